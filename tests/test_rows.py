"""The row store: rows sealed into Arrow blocks as they arrive, and the frame made from them."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from intercom_jobs_nb import _rows as R


def row(i: int, status: str | None = "success", workspace: str | None = None) -> R.Row:
    if status is None:
        failed = R.error_row(f"{i}", f"https://x/jobs/status/{i}", "timeout", "took too long")
        return failed._replace(workspace=workspace, fetched_at=1_700_000_000.25 + i)
    made = R.job_row(
        f"{i}",
        status,
        resource_type="ticket" if status == "success" else None,
        resource_id=str(1000 + i) if status == "success" else None,
        resource_url=None,
        url=f"https://x/jobs/status/{i}",
        request_id=f"req-{i}",
        attempts=1 + i % 3,
        fetched_at=1_700_000_000.5 + i,
    )
    return made._replace(workspace=workspace)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 rows, so that a few rows cross several blocks."""
    monkeypatch.setattr(R, "BLOCK", 4)


def statuses(i: int) -> str | None:
    return ("success", "failed", "pending", None)[i % 4]


def test_rows_in_any_order_come_back_in_item_order(small_blocks):
    store = R.RowStore(10)
    for i in [3, 0, 9, 1, 2, 5, 4, 8, 7, 6]:
        store[i] = row(i, statuses(i))
    assert store._sealed and not store._open  # every block full: all sealed
    df, present = store.frame()
    assert present.tolist() == list(range(10))
    expected = R.to_frame([row(i, statuses(i)) for i in range(10)])
    pd.testing.assert_frame_equal(df, expected)
    assert df["job_id"].tolist() == [str(i) for i in range(10)]
    # ... and each row reads back as it was given, sealed or not.
    assert [store[i] for i in range(10)] == [row(i, statuses(i)) for i in range(10)]
    assert list(store) == [row(i, statuses(i)) for i in range(10)]


def test_a_row_replacing_a_sealed_one_wins_in_the_frame(small_blocks):
    store = R.RowStore(8)
    for i in range(8):
        store[i] = row(i, "pending")
    assert store.todo().tolist() == list(range(8))
    store[5] = row(5, "success")
    store[2] = row(2, "failed")
    assert store.todo().tolist() == [0, 1, 3, 4, 6, 7]
    assert store[5] == row(5, "success")
    df, _ = store.frame()
    assert (
        df["status"].tolist()
        == ["pending"] * 2 + ["failed"] + ["pending"] * 2 + ["success"] + ["pending"] * 2
    )


def test_missing_rows_are_left_out_and_their_items_are_to_do(small_blocks):
    store = R.RowStore(9)
    for i in (0, 1, 2, 3, 6, 8):
        store[i] = row(i)
    store[7] = None  # a slot set to nothing stays empty
    assert store.todo().tolist() == [4, 5, 7]
    df, present = store.frame()
    assert present.tolist() == [0, 1, 2, 3, 6, 8]
    assert df["job_id"].tolist() == ["0", "1", "2", "3", "6", "8"]
    assert store[4] is None and store[7] is None


def test_the_frame_has_the_declared_dtypes_and_missing_values():
    rows = [row(i, statuses(i)) for i in range(12)]
    df = R.to_frame(rows)
    for name, dtype in R.DTYPES.items():
        if name in R.OPTIONAL_COLUMNS:
            assert name not in df.columns  # no row has a workspace
        else:
            assert df[name].dtype == dtype, name
    assert list(df["status"].cat.categories) == list(R.STATUSES)
    errors = df[df["status"].isna()]
    assert (errors["error_code"] == "timeout").all() and errors["http_status"].isna().all()
    assert df["fetched_at"].iloc[1] == pd.Timestamp(1_700_000_001.5, unit="s", tz="UTC")
    assert df["fetched_at"].notna().all()
    assert df["final"].tolist() == [r.final for r in rows]


def test_a_workspace_column_appears_when_rows_have_one_and_round_trips(small_blocks):
    rows = [row(i, statuses(i), ("acme", "globex")[i % 2]) for i in range(10)]
    df = R.to_frame(list(rows))
    assert df["workspace"].tolist() == [r.workspace for r in rows]
    assert list(df["workspace"].cat.categories) == ["acme", "globex"]
    back = R.frame_rows(df)
    assert [r._replace(fetched_at=None) for r in back] == [
        r._replace(fetched_at=None) for r in rows
    ]


def test_blocks_with_different_dictionaries_share_one_set_of_categories(small_blocks):
    codes = ["timeout", "server_error", "job_not_found", "bad_gateway", "timeout", "unknown"]
    rows = [
        R.error_row(str(i), None, code, "x", http_status=500 if "server" in code else None)
        for i, code in enumerate(codes)
    ]
    df = R.to_frame(rows)
    assert df["error_code"].tolist() == codes
    assert list(df["error_code"].cat.categories) == sorted(set(codes))


def test_values_of_other_types_from_a_users_frame_are_read_as_pandas_would():
    odd = R.Row(
        job_id="7",
        status="success",
        resource_type="ticket",
        resource_id=42,
        resource_url=None,
        url=None,
        http_status=200.0,
        error_code=None,
        error_message=None,
        request_id=None,
        attempts=1.0,
        fetched_at=time.time(),
        final=True,
    )
    df = R.to_frame([odd])
    assert df["resource_id"].iloc[0] == "42" and df["http_status"].iloc[0] == 200


def test_an_empty_store_gives_the_columns_and_no_rows():
    df, present = R.RowStore(0).frame()
    assert len(df) == 0 and tuple(df.columns) == R.REQUIRED_COLUMNS
    assert isinstance(present, np.ndarray) and present.size == 0


def test_seconds_become_utc_times_and_a_missing_one_never_reaches_pandas_float_conversion(
    monkeypatch,
):
    """pandas 2 converts float seconds reading uninitialised memory for a NaN's fraction, and
    may then raise FloatingPointError (an enqueue run resumed after a kill did): no NaN may be
    handed to it."""
    seen: list[pd.Series] = []
    convert = pd.to_datetime

    def spy(arg, *args, **kwargs):
        seen.append(arg)
        return convert(arg, *args, **kwargs)

    monkeypatch.setattr(pd, "to_datetime", spy)
    out = R.utc_from_seconds(pd.Series([1_700_000_000.25, None, np.nan, 0], dtype=object))
    assert str(out.dtype) == "datetime64[ns, UTC]"
    assert out.tolist()[0] == pd.Timestamp("2023-11-14 22:13:20.25", tz="UTC")
    assert out.isna().tolist() == [False, True, True, False]
    assert out.tolist()[3] == pd.Timestamp(0, tz="UTC")
    assert seen and not any(pd.Series(arg).isna().any() for arg in seen)
