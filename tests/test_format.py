"""Numbers one way everywhere: 1,502 and 72.4%."""

from __future__ import annotations

import pytest

from intercom_jobs_nb._format import duration, number, percent


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0"), (999, "999"), (1502, "1,502"), (10**6, "1,000,000")]
)
def test_counts_have_thousands_separators(n, text):
    assert number(n) == text


@pytest.mark.parametrize(
    ("share", "text"), [(0.7243, "72.4%"), (1.0, "100.0%"), (0.0, "0.0%"), (2 / 3, "66.7%")]
)
def test_shares_are_percentages_with_one_decimal(share, text):
    assert percent(share) == text


def test_a_missing_share_is_blank_not_nan():
    assert percent(float("nan")) == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1 s"), (6, "6 s"), (60, "1 min"), (125, "2 min 5 s"), (3780, "1 h 3 min")],
)
def test_durations(seconds, text):
    assert duration(seconds) == text
