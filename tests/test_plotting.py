"""plot_status draws the outcomes; outcome_counts is the table behind it."""

from __future__ import annotations

import sys

import matplotlib
import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb.sandbox import Sandbox

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def jobs_frame():
    """60 jobs: success, failed, pending, plus one unknown and one invalid id (errors)."""
    with Sandbox(jobs=60, seed=0, pending_share=0.2, pending_seconds=(1e9, 1e9)) as sb:
        return ij.fetch_jobs(
            [*sb.job_ids, "999999", "bad/id"], token=sb.token, base_url=sb.base_url, progress=False
        )


def test_outcomes_name_unreadable_rows_error(jobs_frame):
    out = ij.outcomes(jobs_frame)
    assert list(out.cat.categories) == ["success", "failed", "pending", "error"]
    assert (out == "error").sum() == 2
    assert (out == "pending").sum() == (jobs_frame["status"] == "pending").sum()


def test_outcome_counts_has_every_outcome_even_at_zero(jobs_frame):
    final_only = jobs_frame.loc[jobs_frame["status"] != "pending"].dropna(subset=["status"])
    table = ij.outcome_counts(final_only)
    assert list(table.index) == ["success", "failed", "pending", "error"]
    assert table.loc["pending"].sum() == 0 and table.loc["error"].sum() == 0
    assert table.to_numpy().sum() == len(final_only)


def test_plot_status_draws_one_bar_per_outcome(jobs_frame):
    ax = ij.plot_status(jobs_frame)
    heights = [p.get_height() for p in ax.patches]
    expected = ij.outcome_counts(jobs_frame).sum(axis=1).tolist()
    assert heights == expected
    assert [t.get_text() for t in ax.get_xticklabels()] == ["success", "failed", "pending", "error"]
    assert ax.get_title() == f"Job outcomes ({len(jobs_frame)} jobs)"
    matplotlib.pyplot.close(ax.figure)


def test_plot_status_stacks_several_resource_types(jobs_frame):
    df = jobs_frame.copy()
    kinds = ["ticket", "conversation"] * (len(df) // 2)
    df["resource_type"] = pd.Categorical(kinds).astype(object)
    df.loc[df["status"].isna(), "resource_type"] = None
    fig = matplotlib.figure.Figure()
    ax = ij.plot_status(df, ax=fig.add_subplot())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "conversation",
        "ticket",
        "(none)",
    ] or [t.get_text() for t in ax.get_legend().get_texts()] == ["ticket", "conversation", "(none)"]
    assert sum(p.get_height() for p in ax.patches) == len(df)


def test_plot_status_without_matplotlib_says_how_to_install(jobs_frame, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r'pip install "intercom-jobs-nb\[plot\]"'):
        ij.plot_status(jobs_frame)
