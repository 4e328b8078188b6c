"""fetch_jobs and fetch_job against the sandbox, over real sockets."""

from __future__ import annotations

import functools
import inspect
import re
import sqlite3

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import _transport as transport
from intercom_jobs_nb._checkpoint import Checkpoint
from intercom_jobs_nb._rows import REQUIRED_COLUMNS
from intercom_jobs_nb.sandbox import Sandbox

RESULT_COLUMNS = [
    "job_id",
    "status",
    "resource_type",
    "resource_id",
    "resource_url",
    "url",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "fetched_at",
    "final",
]


def test_one_row_per_distinct_id_in_first_seen_order(final_sandbox, opts):
    a, b, c = final_sandbox.job_ids[:3]
    df = ij.fetch_jobs([b, a, f" {b} ", int(c), c, a], **opts(final_sandbox))
    assert df["job_id"].tolist() == [b, a, c]


def test_result_columns_and_dtypes(final_sandbox, opts):
    df = ij.fetch_jobs(final_sandbox.job_ids[:5], **opts(final_sandbox))
    assert list(df.columns) == RESULT_COLUMNS
    assert list(df["status"].cat.categories) == ["pending", "success", "failed"]
    assert str(df["http_status"].dtype) == "Int16"
    assert str(df["attempts"].dtype) == "Int16"
    assert str(df["fetched_at"].dtype).startswith("datetime64")
    assert str(df["fetched_at"].dt.tz) == "UTC"
    assert df["job_id"].dtype == "string"


def test_success_rows_name_the_ticket_made(final_sandbox, opts):
    df = ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox))
    done = df[df["status"] == "success"]
    assert len(done) > 0
    assert done["resource_type"].eq("ticket").all()
    assert done["resource_id"].notna().all()
    pairs = zip(done["resource_url"], done["resource_id"], strict=True)
    assert all(url.endswith(f"/tickets/{rid}") for url, rid in pairs)
    assert done["http_status"].eq(200).all() and done["error_code"].isna().all()
    failed = df[df["status"] == "failed"]
    assert len(failed) > 0 and failed["resource_id"].isna().all()


def test_statuses_match_what_the_sandbox_holds(mixed_sandbox, opts):
    df = ij.fetch_jobs(mixed_sandbox.job_ids, **opts(mixed_sandbox))
    counts = df["status"].value_counts()
    assert counts["pending"] > 0 and counts["success"] + counts["failed"] > 0
    assert counts.sum() == len(mixed_sandbox.job_ids)


def test_requests_run_concurrently(opts):
    with Sandbox(jobs=40, latency=0.05) as sb:
        ij.fetch_jobs(sb.job_ids, **opts(sb, max_workers=8))
        assert 2 <= sb.stats["max_in_flight"] <= 8


def test_accepts_a_series(final_sandbox, opts):
    ids = pd.Series(final_sandbox.job_ids[:4])
    assert ij.fetch_jobs(ids, **opts(final_sandbox))["job_id"].tolist() == ids.tolist()


def test_accepts_a_generator_of_ints(final_sandbox, opts):
    df = ij.fetch_jobs((int(i) for i in final_sandbox.job_ids[:3]), **opts(final_sandbox))
    assert df["job_id"].tolist() == final_sandbox.job_ids[:3]
    assert df["error_code"].isna().all()


def test_dataframe_columns_come_back_alongside(final_sandbox, opts):
    ids = final_sandbox.job_ids[:3]
    mine = pd.DataFrame({"order": ["A", "B", "C"], "job_id": ids, "amount": [1.5, 2.5, 3.5]})
    df = ij.fetch_jobs(mine, **opts(final_sandbox))
    assert df["job_id"].tolist() == ids
    assert df["order"].tolist() == ["A", "B", "C"]
    assert df["amount"].tolist() == [1.5, 2.5, 3.5]


def test_dataframe_column_named_like_a_result_is_kept_renamed(final_sandbox, opts):
    mine = pd.DataFrame({"job_id": final_sandbox.job_ids[:2], "status": ["open", "closed"]})
    with pytest.warns(UserWarning, match="status_input"):
        df = ij.fetch_jobs(mine, **opts(final_sandbox))
    assert df["status_input"].tolist() == ["open", "closed"]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"job_id": ["1001", "1002"], "url": ["a", "b"]}), "url_input"),
        (pd.DataFrame({"job_id": ["1001", "1001"]}), "repeat a job_id"),
    ],
)
def test_warnings_point_at_the_users_line(final_sandbox, opts, frame, match):
    with pytest.warns(UserWarning, match=match) as record:
        ij.fetch_jobs(frame, **opts(final_sandbox))
    assert [w.filename for w in record] == [__file__]


def test_dataframe_without_job_id_column_is_refused(final_sandbox, opts):
    with pytest.raises(ij.ConfigurationError, match="job_id"):
        ij.fetch_jobs(pd.DataFrame({"id": ["1"]}), **opts(final_sandbox))


def test_accepts_a_txt_file(tmp_path, final_sandbox, opts):
    path = tmp_path / "ids.txt"
    path.write_text("# my jobs\n" + "\n".join(final_sandbox.job_ids[:3]) + "\n\n")
    assert (
        ij.fetch_jobs(path, **opts(final_sandbox))["job_id"].tolist() == final_sandbox.job_ids[:3]
    )


def test_accepts_a_csv_file_with_job_id_column(tmp_path, final_sandbox, opts):
    path = tmp_path / "ids.csv"
    ids = final_sandbox.job_ids[:2]
    path.write_text(f"customer,job_id\nacme,{ids[0]}\nglobex,{ids[1]}\n")
    df = ij.fetch_jobs(str(path), **opts(final_sandbox))
    assert df["job_id"].tolist() == ids and df["customer"].tolist() == ["acme", "globex"]


def test_accepts_a_headerless_csv_of_ids(tmp_path, final_sandbox, opts):
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(final_sandbox.job_ids[:3]) + "\n")
    assert (
        ij.fetch_jobs(path, **opts(final_sandbox))["job_id"].tolist() == final_sandbox.job_ids[:3]
    )


def test_a_missing_ids_file_is_a_clear_error(tmp_path, final_sandbox, opts):
    with pytest.raises(ij.ConfigurationError, match="no such ids file"):
        ij.fetch_jobs(tmp_path / "nope.txt", **opts(final_sandbox))


def test_a_single_string_is_refused_with_a_hint(final_sandbox, opts):
    with pytest.raises(ij.ConfigurationError, match="fetch_job"):
        ij.fetch_jobs("1001", **opts(final_sandbox))


BAD_IDS = [
    "",
    "   ",
    "a/b",
    "../admin",
    "1?x=1",
    "1#frag",
    "1..2",
    "12 34",
    "1\x00",
    "1\n2",
    "x" * 200,
    "é",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_bad_id_is_an_invalid_job_id_row_and_never_sent(final_sandbox, opts, bad):
    good = final_sandbox.job_ids[0]
    df = ij.fetch_jobs([bad, good], **opts(final_sandbox))
    row = df.iloc[0]
    assert row["error_code"] == "invalid_job_id" and pd.isna(row["status"])
    assert row["attempts"] == 0 and pd.isna(row["http_status"])
    assert "not sent" in row["error_message"]
    assert df.iloc[1]["status"] in ("success", "failed")
    assert final_sandbox.stats["requests"] == 1


def test_unknown_job_is_a_job_not_found_row(final_sandbox, opts):
    df = ij.fetch_jobs(["999999"], **opts(final_sandbox))
    row = df.iloc[0]
    assert (row["error_code"], row["http_status"], row["attempts"]) == ("job_not_found", 404, 1)
    assert row["error_message"] == "Job Not Found"
    assert len(row["request_id"]) == 36


def test_intercom_version_header_is_sent(final_sandbox, opts):
    ij.fetch_jobs(final_sandbox.job_ids[:2], **opts(final_sandbox))
    assert final_sandbox.stats["versions"] == {"2.15": 2}


def test_rejected_intercom_version_stops_the_run(final_sandbox, opts):
    with pytest.raises(ij.ApiVersionError, match="9.99"):
        ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, api_version="9.99"))
    assert final_sandbox.stats["requests"] <= 3


def test_empty_input_gives_an_empty_typed_frame(final_sandbox, opts):
    df = ij.fetch_jobs([], **opts(final_sandbox))
    assert list(df.columns) == RESULT_COLUMNS and len(df) == 0
    assert final_sandbox.stats["requests"] == 0


def test_callable_progress_gets_counts_that_match_the_result(mixed_sandbox, opts):
    snapshots: list[ij.Snapshot] = []
    df = ij.fetch_jobs(
        [*mixed_sandbox.job_ids, "bad/id", "424242"],
        **opts(mixed_sandbox, progress=snapshots.append),
    )
    last = snapshots[-1]
    assert last.finished and last.done == last.total == len(df)
    counts = df["status"].value_counts()
    assert (last.success, last.failed, last.pending) == (
        counts["success"],
        counts["failed"],
        counts["pending"],
    )
    assert last.errors == 2


def test_progress_bar_shows_counts(final_sandbox, opts, monkeypatch, capsys):
    monkeypatch.delenv("TQDM_DISABLE")
    ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, progress=True))
    err = capsys.readouterr().err
    assert f"{len(final_sandbox.job_ids)}/{len(final_sandbox.job_ids)}" in err
    assert "success=" in err and "failed=" in err


def test_tqdm_disable_silences_the_bar(final_sandbox, opts, capsys):
    ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, progress=True))
    assert capsys.readouterr().err == ""


def test_fetch_job_returns_the_row_as_a_dict(final_sandbox, opts):
    job_id = final_sandbox.job_ids[0]
    job = ij.fetch_job(job_id, **{k: v for k, v in opts(final_sandbox).items() if k != "progress"})
    assert job["job_id"] == job_id and job["status"] in ("success", "failed")
    assert job["error_code"] is None and job["url"].endswith(f"/jobs/status/{job_id}")


def test_fetch_job_raises_job_not_found(final_sandbox):
    with pytest.raises(ij.JobNotFoundError) as caught:
        ij.fetch_job("777777", token=final_sandbox.token, base_url=final_sandbox.base_url)
    assert caught.value.code == "job_not_found" and caught.value.job_id == "777777"


def test_fetch_job_refuses_a_bad_id_without_a_request(final_sandbox):
    with pytest.raises(ij.InvalidJobIdError):
        ij.fetch_job("../../admins", token=final_sandbox.token, base_url=final_sandbox.base_url)
    assert final_sandbox.stats["requests"] == 0


def test_fetch_job_raises_server_error_once_retries_are_spent(final_sandbox):
    job_id = final_sandbox.job_ids[0]
    final_sandbox.inject(job_id, "server_error", "server_error")
    with pytest.raises(ij.ServerError) as caught:
        ij.fetch_job(job_id, token=final_sandbox.token, base_url=final_sandbox.base_url, retries=1)
    assert caught.value.record["attempts"] == 2


# -- how a run ends: every run-ending exception carries the rows so far -------------------------


def crash_on(monkeypatch, job_id):
    """Make reading ``job_id``'s answer raise TypeError, as a bug would; others read normally."""
    real = transport.read_job

    def read_job(asked, *args, **kwargs):
        if asked == job_id:
            raise TypeError(f"a bug while reading job {asked}")
        return real(asked, *args, **kwargs)

    monkeypatch.setattr(transport, "read_job", read_job)


def test_an_unexpected_error_mid_run_is_run_failed_with_the_rows_before(
    final_sandbox, opts, monkeypatch
):
    crashing = final_sandbox.job_ids[40]
    crash_on(monkeypatch, crashing)
    with pytest.raises(ij.RunFailedError) as caught:
        ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, max_workers=2))
    exc = caught.value
    assert isinstance(exc.__cause__, TypeError)
    assert "a bug while reading job" in str(exc.__cause__)
    assert isinstance(exc.df, pd.DataFrame)
    assert list(exc.df.columns) == RESULT_COLUMNS
    assert len(exc.df) > 0
    assert crashing not in set(exc.df["job_id"])
    assert exc.df["status"].notna().all()
    assert set(exc.df["job_id"]) <= set(final_sandbox.job_ids)


@pytest.mark.parametrize("enqueue", [False, True], ids=["fetch_jobs", "enqueue_tickets"])
def test_a_bug_inside_the_transport_ends_the_run_as_a_bug_not_as_a_network_fault(
    final_sandbox, opts, monkeypatch, tmp_path, enqueue
):
    # As a Python upgrade that removed a name the transport used would: an AttributeError
    # while a request is under way, on the 20th request.
    real = transport._read_body
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 20:
            raise AttributeError("'HTTPConnection' object has no attribute '_output'")
        return real(*args, **kwargs)

    monkeypatch.setattr(transport, "_read_body", broken)
    with pytest.raises(ij.RunFailedError) as caught:
        if enqueue:
            rows = [{"key": f"k{i}", "contact_id": f"c{i}"} for i in range(40)]
            ij.enqueue_tickets(rows, ledger=tmp_path / "l.sqlite", ticket_type_id="88",
                               **opts(final_sandbox, max_workers=1))  # fmt: skip
        else:
            ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, max_workers=1))
    exc = caught.value
    assert isinstance(exc.__cause__, AttributeError)
    assert isinstance(exc.df, pd.DataFrame) and len(exc.df) >= 18
    code = "enqueue_error_code" if enqueue else "error_code"
    assert "connection_error" not in set(exc.df[code].dropna())
    assert len(calls) == 20  # nothing was asked again after the bug


@pytest.mark.parametrize(
    "cls", [ij.FetchInterrupted, ij.AuthenticationError, ij.CheckpointError, ij.RunFailedError]
)
def test_run_ending_exceptions_declare_df(cls):
    assert any("df" in inspect.get_annotations(klass) for klass in cls.__mro__)


def interrupted(sb, opts, tmp_path, monkeypatch):
    said = []

    def ctrl_c_once(snapshot):
        if snapshot.done and not said:
            said.append(snapshot.done)
            raise KeyboardInterrupt

    ij.fetch_jobs(sb.job_ids, **opts(sb, progress=ctrl_c_once))


def token_rejected(sb, opts, tmp_path, monkeypatch):
    ij.fetch_jobs(sb.job_ids, **opts(sb, token="revoked"))


def version_rejected(sb, opts, tmp_path, monkeypatch):
    ij.fetch_jobs(sb.job_ids, **opts(sb, api_version="9.99"))


def checkpoint_locked(sb, opts, tmp_path, monkeypatch):
    path = tmp_path / "jobs.sqlite"
    ij.fetch_jobs(sb.job_ids[:5], checkpoint=path, **opts(sb))
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    write = Checkpoint.write

    def locked_then_write(self, rows):  # another program takes SQLite's write lock mid-run
        if not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")
        write(self, rows)

    monkeypatch.setattr(Checkpoint, "write", locked_then_write)
    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, timeout=0.2))
    try:
        ij.fetch_jobs(sb.job_ids, checkpoint=path, **opts(sb))
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def crashed(sb, opts, tmp_path, monkeypatch):
    crash_on(monkeypatch, sb.job_ids[30])
    ij.fetch_jobs(sb.job_ids, **opts(sb))


RUN_ENDINGS = {
    "interrupted": (interrupted, ij.FetchInterrupted),
    "token rejected": (token_rejected, ij.AuthenticationError),
    "version rejected": (version_rejected, ij.ApiVersionError),
    "checkpoint locked": (checkpoint_locked, ij.CheckpointError),
    "unexpected error": (crashed, ij.RunFailedError),
}


@pytest.mark.parametrize("ending", list(RUN_ENDINGS))
def test_every_run_ending_exception_has_df_with_the_result_columns(
    final_sandbox, opts, tmp_path, monkeypatch, ending
):
    run, expected = RUN_ENDINGS[ending]
    with pytest.raises(expected) as caught:
        run(final_sandbox, opts, tmp_path, monkeypatch)
    df = caught.value.df
    assert isinstance(df, pd.DataFrame)
    assert tuple(df.columns) == REQUIRED_COLUMNS


def test_the_progress_bar_counts_match_its_position(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    # A run long enough for many redraws, each of which must show counts of its own moment.
    with ij.Sandbox(jobs=200, latency=0.02, pending_share=0.0) as sb:
        ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, max_workers=4)
    err = capsys.readouterr().err
    states = re.findall(
        r"(\d+)/\d+ \[[^\]]*?success=(\d+) failed=(\d+) pending=(\d+) errors=(\d+)", err
    )
    assert len(states) > 3, err[-500:]
    for done, *counts in states:
        assert int(done) == sum(map(int, counts))
