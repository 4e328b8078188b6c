"""intercom_jobs_nb.dask: many workspaces on a two-process LocalCluster against one sandbox with
four workspaces, each its own token and its own 100-requests-per-2-s limit.

One cluster for the module (the machine has two cores): its worker processes inherit the
``INTERCOM_TOKEN_*`` variables set before it starts; the graph only names them.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import intercom_jobs_nb as ij  # noqa: E402
import intercom_jobs_nb.dask as ijd  # noqa: E402
from intercom_jobs_nb.sandbox import Sandbox  # noqa: E402

WORKSPACES = ("acme", "globex", "initech", "umbrella")
# Tokens easy to search for anywhere they must not be; never in the graph.
TOKENS = {ws: f"tok-{ws}-s3cret-{uuid.uuid4().hex}" for ws in WORKSPACES}
ENV = {ws: f"INTERCOM_TOKEN_{ws.upper()}" for ws in WORKSPACES}
REFS = {ws: f"env:{ENV[ws]}" for ws in WORKSPACES}
LIMIT, WINDOW = 100, 2
JOBS = 400  # per workspace: at least two full windows at 100 per 2 s
# Seconds any one computation may take (the longest takes about 10): a worker that hangs fails
# its test with a timeout, not the whole run.
WITHIN = 120
# The columns that say what a job is (not when or how it was read).
SAME = [
    "job_id",
    "status",
    "resource_type",
    "resource_id",
    "resource_url",
    "url",
    "http_status",
    "error_code",
    "error_message",
    "final",
]


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        for ws in WORKSPACES:
            mp.setenv(ENV[ws], TOKENS[ws])
        yield


@pytest.fixture(scope="module")
def client(env):
    """Two worker processes, two threads each: four workspaces run at once (a task mostly
    waits on the network)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def four():
    """Four workspaces, each its own token, limit and job outcomes (10% failed, none pending)."""
    with Sandbox(
        jobs=JOBS,
        seed=11,
        failed_share=0.1,
        pending_share=0.0,
        rate_limit=LIMIT,
        window=WINDOW,
        tokens={TOKENS[ws]: ws for ws in WORKSPACES},
        separate_jobs=True,
    ) as sb:
        yield sb


def fresh_window(margin: float = 0.05) -> None:
    """Sleep into the next rate-limit window: its whole budget is ours (another process may
    have used this one's)."""
    now = time.time()
    time.sleep(math.floor(now / WINDOW + 1) * WINDOW - now + margin)


def jobs_frame(sb: Sandbox, workspaces=WORKSPACES, n: int | None = None) -> pd.DataFrame:
    """Every workspace's jobs, interleaved (so each partition of a Dask frame mixes them), with
    a column of the user's own."""
    ids = sb.job_ids[:n]
    rows = [(j, ws, f"{ws}:{j}") for j in ids for ws in workspaces]
    return pd.DataFrame(rows, columns=["job_id", "workspace", "note"])


def quiet(client, within: float = 60.0) -> None:
    """Wait until no run is left on any worker. A compute that raised for one workspace leaves
    the others' tasks running (a worker cannot stop a task), still asking the sandbox: a test
    that counts requests must not count theirs."""

    def ours() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("intercom-jobs")]

    deadline = time.monotonic() + within
    while any(client.run(ours).values()):
        assert time.monotonic() < deadline, client.run(ours)
        time.sleep(0.05)


def full_windows(counts: dict[int, int]) -> list[int]:
    """Requests served in each full window: between the first and the last with requests."""
    starts = sorted(counts)
    return [counts.get(s, 0) for s in range(starts[0] + WINDOW, starts[-1], WINDOW)]


@pytest.fixture(scope="module")
def dask_run(client, four):
    """The four workspaces fetched on the cluster, from a Dask frame of 4 partitions."""
    ddf = dd.from_pandas(jobs_frame(four), npartitions=4)
    out = ijd.fetch_jobs(ddf, tokens=REFS, base_url=four.base_url, retries=2)
    fresh_window()
    four.reset_stats()
    started = time.monotonic()
    df = client.compute(out).result(timeout=WITHIN)
    elapsed = time.monotonic() - started
    counts = {ws: four.window_counts(ws) for ws in WORKSPACES}
    refused = {ws: four.refused(ws) for ws in WORKSPACES}
    return df, counts, refused, elapsed


def test_every_row_is_right_for_its_workspace(dask_run, four):
    df, *_ = dask_run
    assert len(df) == 4 * JOBS
    assert isinstance(df["workspace"].dtype, pd.CategoricalDtype)
    assert list(df["workspace"].cat.categories) == list(WORKSPACES)
    assert df["error_code"].isna().all(), df["error_code"].value_counts()
    for ws in WORKSPACES:
        mine = df[df["workspace"] == ws]
        truth = four.job_outcomes(ws)
        assert mine["job_id"].tolist() == four.job_ids  # input order, one row per job
        assert mine["status"].astype(str).tolist() == [truth[j] for j in four.job_ids]
        assert mine["note"].tolist() == [f"{ws}:{j}" for j in four.job_ids]
        ok = mine["status"] == "success"
        assert (
            mine.loc[ok, "resource_id"].astype(int) == mine.loc[ok, "job_id"].astype(int) + 4000
        ).all()
    # The workspaces' outcomes differ: rows of two workspaces were not mixed up.
    by_ws = {ws: df[df["workspace"] == ws]["status"].tolist() for ws in WORKSPACES}
    assert len({tuple(v) for v in by_ws.values()}) == 4


def test_each_workspace_uses_its_whole_budget_without_429(dask_run):
    _, counts, refused, _ = dask_run
    assert refused == {ws: 0 for ws in WORKSPACES}
    for ws in WORKSPACES:
        full = full_windows(counts[ws])
        assert len(full) >= 2, (ws, counts[ws])
        assert min(full) >= 0.9 * LIMIT, (ws, counts[ws])


def test_workspaces_ran_at_the_same_time(dask_run):
    """Four workspaces of 400 jobs at 100 per 2 s: one after another would take about 4 x 8 s."""
    _, counts, _, _ = dask_run
    spans = [(min(c), max(c)) for c in counts.values()]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all were running at once


def test_the_same_rows_as_the_in_process_calls(dask_run, four):
    df, *_ = dask_run
    frame = jobs_frame(four)
    fresh_window()

    def one(ws):
        mine = frame[frame["workspace"] == ws].drop(columns=["workspace"])
        return ij.fetch_jobs(mine, token=TOKENS[ws], base_url=four.base_url, progress=False)

    with ThreadPoolExecutor(len(WORKSPACES)) as pool:
        alone = dict(zip(WORKSPACES, pool.map(one, WORKSPACES), strict=True))
    for ws in WORKSPACES:
        ours = df[df["workspace"] == ws].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours[SAME], alone[ws][SAME])
        # The user's column: the same values (Dask keeps strings as its own string dtype).
        assert ours["note"].tolist() == alone[ws]["note"].tolist()


def test_the_task_profiler_is_stopped_where_it_can_deadlock_a_worker(client, dask_run):
    """On Python 3.11 and earlier a worker's task profiler can deadlock a worker whose tasks
    start threads (CPython gh-106883): the workers that ran a workspace stopped it."""

    def profiling(dask_worker) -> bool:
        return dask_worker.periodic_callbacks["profile"].is_running()

    running = client.run(profiling)
    if sys.version_info < (3, 12):
        assert not all(running.values()), running
    else:
        assert all(running.values()), running


# -- tokens never in the graph, task keys or logs ------------------------------------------------


def test_no_token_in_the_graph_task_keys_or_logs(client, four):
    frame = jobs_frame(four, n=5)
    out = ijd.fetch_jobs(dd.from_pandas(frame, npartitions=2), tokens=REFS, base_url=four.base_url)
    graph = dict(out.__dask_graph__())
    blob = cloudpickle.dumps(graph)
    text = repr(graph) + repr(list(graph))
    future = client.compute(out)
    df = future.result(timeout=WITHIN)
    assert len(df) == 20 and df["error_code"].isna().all()
    keys = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
    assert keys  # the result is still held, so its tasks are still known
    specs = client.run_on_scheduler(
        lambda dask_scheduler: [repr(ts.run_spec) for ts in dask_scheduler.tasks.values()]
    )
    logs = repr(client.get_scheduler_logs()) + repr(client.get_worker_logs())
    del future
    for ws in WORKSPACES:
        token = TOKENS[ws]
        assert token.encode() not in blob
        assert token not in text and token not in repr(keys) and token not in repr(specs)
        assert token not in logs
        assert ENV[ws].encode() in blob  # what the graph carries instead: the variable's name


def test_building_the_graph_runs_nothing(client, four):
    quiet(client)
    four.reset_stats()
    ddf = dd.from_pandas(jobs_frame(four, n=10), npartitions=3)
    out = ijd.fetch_jobs(ddf, tokens=REFS, base_url=four.base_url)
    ijd.wait_for_jobs(out, tokens=REFS, base_url=four.base_url)
    assert out.npartitions == len(WORKSPACES)
    assert four.stats["requests"] == 0


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", [TOKENS["acme"], ij.Secret(TOKENS["acme"]), 42], ids=["plain", "secret", "int"]
)
def test_a_token_that_is_not_an_env_reference_is_refused(four, ref):
    with pytest.raises(ij.ConfigurationError, match='"env:NAME"') as info:
        ijd.fetch_jobs(jobs_frame(four, ["acme"], 3), tokens={"acme": ref}, base_url=four.base_url)
    assert TOKENS["acme"] not in str(info.value)


@pytest.mark.parametrize("ref", ["env:", "env:1BAD", "env:A-B"])
def test_a_malformed_env_reference_is_refused(four, ref):
    with pytest.raises(ij.ConfigurationError, match="env:NAME"):
        ijd.fetch_jobs(jobs_frame(four, ["acme"], 3), tokens={"acme": ref}, base_url=four.base_url)


def test_a_variable_missing_on_the_worker_is_named_not_shown(client, four):
    out = ijd.fetch_jobs(
        jobs_frame(four, ["acme", "globex"], 3),
        tokens={"acme": REFS["acme"], "globex": "env:INTERCOM_TOKEN_NOT_SET_ANYWHERE"},
        base_url=four.base_url,
    )
    with pytest.raises(ij.MissingTokenError, match="INTERCOM_TOKEN_NOT_SET_ANYWHERE") as info:
        client.compute(out).result(timeout=WITHIN)
    assert "globex" in str(info.value)
    assert not any(token in str(info.value) for token in TOKENS.values())


def test_a_frame_without_a_workspace_column_is_refused(four):
    frame = pd.DataFrame({"job_id": four.job_ids[:3]})
    with pytest.raises(ij.ConfigurationError, match="workspace"):
        ijd.fetch_jobs(frame, tokens=REFS, base_url=four.base_url)
    with pytest.raises(ij.ConfigurationError, match="workspace"):
        ijd.fetch_jobs(dd.from_pandas(frame, npartitions=1), tokens=REFS, base_url=four.base_url)
    with pytest.raises(ij.ConfigurationError, match="job_id"):
        ijd.fetch_jobs(frame.rename(columns={"job_id": "workspace"}), tokens=REFS)


def test_a_workspace_without_a_token_is_refused(client, four):
    frame = jobs_frame(four, ["acme", "hooli"], 3)
    tokens = {"acme": REFS["acme"]}
    with pytest.raises(ij.ConfigurationError, match="hooli"):
        ijd.fetch_jobs(frame, tokens=tokens, base_url=four.base_url)  # pandas: checked at once
    quiet(client)
    four.reset_stats()
    out = ijd.fetch_jobs(
        dd.from_pandas(frame, npartitions=2), tokens=tokens, base_url=four.base_url
    )
    with pytest.raises(ij.ConfigurationError, match="hooli"):  # Dask: when computed
        client.compute(out).result(timeout=WITHIN)
    assert four.stats["requests"] == 0


@pytest.mark.parametrize(
    "tokens", [None, {}, ["acme"], {"": "env:X"}], ids=["none", "empty", "list", "empty-name"]
)
def test_tokens_must_name_workspaces(four, tokens):
    with pytest.raises(ij.ConfigurationError):
        ijd.fetch_jobs(jobs_frame(four, ["acme"], 3), tokens=tokens, base_url=four.base_url)


def test_bad_options_are_refused_before_anything_runs(four):
    frame = jobs_frame(four, ["acme"], 3)
    with pytest.raises(ij.ConfigurationError, match="max_workers"):
        ijd.fetch_jobs(frame, tokens=REFS, base_url=four.base_url, max_workers=0)
    with pytest.raises(ij.ConfigurationError, match="plain http"):
        ijd.fetch_jobs(frame, tokens=REFS, base_url="http://example.com")
    with pytest.raises(ij.ConfigurationError, match="poll_interval"):
        ijd.wait_for_jobs(frame, tokens=REFS, base_url=four.base_url, poll_interval=-1)


def test_a_frame_of_another_kind_is_refused():
    with pytest.raises(ij.ConfigurationError, match="DataFrame"):
        ijd.fetch_jobs(["1001"], tokens=REFS)


# -- waiting, and Parquet ------------------------------------------------------------------------


def test_wait_for_jobs_polls_each_workspace_until_final(client):
    with Sandbox(
        jobs=12,
        seed=4,
        pending_share=0.6,
        pending_seconds=(1e9, 1e9),  # until finish_all()
        tokens={TOKENS[ws]: ws for ws in ("acme", "globex")},
        separate_jobs=True,
    ) as sb:
        frame = jobs_frame(sb, ["acme", "globex"])
        out = ijd.fetch_jobs(frame, tokens=REFS, base_url=sb.base_url)
        first = client.compute(out).result(timeout=WITHIN)
        assert len(first) == 24 and (first["status"] == "pending").any()
        waiting = ijd.wait_for_jobs(first, tokens=REFS, base_url=sb.base_url, poll_interval=0.2)
        timer = threading.Timer(1.5, sb.finish_all)  # while the workers poll
        timer.start()
        try:
            done = client.compute(waiting).result(timeout=WITHIN)
        finally:
            timer.cancel()
        asked = sb.stats["per_job"]
    assert max(asked.values()) >= 3  # pending jobs were asked again, pass after pass
    assert done["final"].all()
    assert (done["status"] != "pending").all()
    for ws in ("acme", "globex"):
        mine = done[done["workspace"] == ws]
        truth = sb.job_outcomes(ws)
        assert mine["status"].astype(str).tolist() == [truth[j] for j in sb.job_ids]
        assert mine["note"].tolist() == [f"{ws}:{j}" for j in sb.job_ids]


def test_to_parquet_writes_one_folder_per_workspace(client, four, tmp_path):
    frame = jobs_frame(four, ["acme", "globex", "initech"], 8)
    out = ijd.fetch_jobs(frame, tokens=REFS, base_url=four.base_url)
    target = ijd.to_parquet(out, tmp_path / "jobs")
    assert target == (tmp_path / "jobs").resolve()
    folders = sorted(p.name for p in target.iterdir() if p.is_dir())
    assert folders == ["workspace=acme", "workspace=globex", "workspace=initech"]
    for folder in folders:  # one file each: the workspace's one partition
        assert len(list((target / folder).glob("*.parquet"))) == 1
    back = pd.read_parquet(target)
    assert len(back) == 24
    expected = client.compute(out).result(timeout=WITHIN)  # umbrella's partition is empty
    for column in ("status", "resource_type", "error_code", "workspace"):
        assert "__UNKNOWN_CATEGORIES__" not in list(expected[column].cat.categories), column
    # The dtypes of the computed frame, which ij.export_parquet keeps too.
    assert back.dtypes.astype(str).to_dict() == expected.dtypes.astype(str).to_dict()
    assert list(back["workspace"].cat.categories) == ["acme", "globex", "initech"]
    ij.export_parquet(expected, tmp_path / "all.parquet")
    reference = pd.read_parquet(tmp_path / "all.parquet")
    for column in reference.columns:
        if expected[column].notna().any():  # (an all-missing categorical comes back as object)
            assert str(back[column].dtype) == str(reference[column].dtype), column
    key = ["workspace", "job_id"]
    ours = back.astype({"workspace": str}).sort_values(key).reset_index(drop=True)
    theirs = expected.astype({"workspace": str}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[SAME + ["note"]], theirs[SAME + ["note"]])


def test_to_parquet_refuses_a_frame_without_workspaces(tmp_path):
    with pytest.raises(ij.ConfigurationError, match="workspace"):
        ijd.to_parquet(dd.from_pandas(pd.DataFrame({"job_id": ["1"]}), npartitions=1), tmp_path)


def test_only_the_dask_module_imports_dask():
    import subprocess

    code = "import sys, intercom_jobs_nb; print('dask' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={
            **os.environ,
        },
    )
    assert done.stdout.strip() == "False", done.stderr


def test_the_private_dask_hook_the_parquet_engine_overrides_is_still_there():
    # intercom_jobs_nb.dask._ParquetEngine overrides it (no public way exists): if a dask
    # release renames it, the override would silently stop writing string[pyarrow] metadata.
    from dask.dataframe.io.parquet.arrow import ArrowDatasetEngine

    hook = ArrowDatasetEngine.__dict__.get("_pandas_to_arrow_table")
    assert hook is not None and "preserve_index" in inspect.signature(hook.__func__).parameters
