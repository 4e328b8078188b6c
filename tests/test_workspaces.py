"""Many workspaces in one call: a frame with a ``workspace`` column and ``tokens=``.

Against one sandbox that serves several workspaces, each with its own token, its own rate-limit
window and its own job outcomes (``separate_jobs``), so rows of two workspaces for one job id
differ and a mix-up shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from clocked import fetch_jobs_on

import intercom_jobs_nb as ij
from intercom_jobs_nb._checkpoint import Checkpoint
from intercom_jobs_nb._clock import FakeClock
from intercom_jobs_nb.sandbox import Sandbox

TOKENS = {"acme": "tok-acme", "globex": "tok-globex", "initech": "tok-initech"}
SAME = ["job_id", "workspace", "status", "resource_id", "error_code", "final"]


@pytest.fixture
def many():
    """Three workspaces (the main one is 'acme'), 60 jobs each, some pending for good."""
    with Sandbox(
        jobs=60,
        seed=5,
        token=TOKENS["acme"],
        workspace="acme",
        tokens={TOKENS["globex"]: "globex", TOKENS["initech"]: "initech"},
        separate_jobs=True,
        pending_share=0.2,
        pending_seconds=(1e9, 1e9),
    ) as sb:
        yield sb


def frame_of(sb: Sandbox, names=("acme", "globex", "initech"), n: int = 60) -> pd.DataFrame:
    """Every workspace's first ``n`` ids, interleaved, with a column of the user's own."""
    rows = [
        {"workspace": name, "job_id": job_id, "mine": f"{name}:{job_id}"}
        for job_id in sb.job_ids[:n]
        for name in names
    ]
    return pd.DataFrame(rows)


def one_by_one(sb: Sandbox, names=("acme", "globex", "initech"), n: int = 60) -> pd.DataFrame:
    """What a call per workspace gives: the truth to compare against."""
    parts = []
    for name in names:
        part = ij.fetch_jobs(
            sb.job_ids[:n], token=TOKENS[name], base_url=sb.base_url, progress=False
        )
        parts.append(part.assign(workspace=name))
    return pd.concat(parts, ignore_index=True)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    out = df[SAME].astype(object).where(df[SAME].notna(), None)
    return out.sort_values(["workspace", "job_id"]).reset_index(drop=True)


def test_one_call_fetches_every_workspace_with_its_own_token(many):
    df = ij.fetch_jobs(frame_of(many), tokens=TOKENS, base_url=many.base_url, progress=False)
    assert len(df) == 180
    # Rows keep their workspace, their order and the user's own columns.
    assert df["workspace"].tolist() == frame_of(many)["workspace"].tolist()
    assert (df["mine"] == df["workspace"].astype(str) + ":" + df["job_id"].astype(str)).all()
    # The same rows as a call per workspace: no row was asked with another workspace's token.
    pd.testing.assert_frame_equal(comparable(df), comparable(one_by_one(many)))
    # ... and the workspaces' outcomes really differ, so a mix-up could not go unseen.
    by = comparable(df).pivot(index="job_id", columns="workspace", values="status")
    assert (by["acme"] != by["globex"]).any()
    assert df["error_code"].isna().all()


def test_a_rejected_token_ends_the_run_and_names_its_workspace(many):
    tokens = {**TOKENS, "initech": "tok-wrong-initech"}
    with pytest.raises(ij.AuthenticationError) as caught:
        ij.fetch_jobs(frame_of(many), tokens=tokens, base_url=many.base_url, progress=False)
    exc = caught.value
    assert exc.workspace == "initech" and "workspace 'initech'" in str(exc)
    assert "check its token in tokens=" in str(exc) and "INTERCOM_TOKEN" not in str(exc)
    assert "tok-wrong-initech" not in str(exc)
    assert exc.df is not None  # the rows so far; none of initech's has a status
    assert exc.df.loc[exc.df["workspace"] == "initech", "status"].isna().all()


def test_env_references_are_read_where_the_run_runs(many, monkeypatch):
    for name, token in TOKENS.items():
        monkeypatch.setenv(f"IJ_TEST_{name.upper()}", token)
    refs = {name: f"env:IJ_TEST_{name.upper()}" for name in TOKENS}
    df = ij.fetch_jobs(frame_of(many, n=10), tokens=refs, base_url=many.base_url, progress=False)
    assert df["error_code"].isna().all() and len(df) == 30


def test_an_unset_env_reference_names_the_variable_and_nothing_is_sent(many, monkeypatch):
    monkeypatch.setenv("IJ_TEST_ACME", TOKENS["acme"])
    monkeypatch.delenv("IJ_TEST_GLOBEX", raising=False)
    before = many.stats["requests"]
    with pytest.raises(ij.MissingTokenError, match="IJ_TEST_GLOBEX") as caught:
        ij.fetch_jobs(
            frame_of(many, ("acme", "globex"), 5),
            tokens={"acme": "env:IJ_TEST_ACME", "globex": "env:IJ_TEST_GLOBEX"},
            base_url=many.base_url,
            progress=False,
        )
    assert TOKENS["acme"] not in str(caught.value)
    assert many.stats["requests"] == before


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda sb: dict(token=TOKENS["acme"]), "belong to 3 workspaces"),
        (lambda sb: dict(tokens={"acme": TOKENS["acme"]}), "no token for the workspaces globex"),
        (
            lambda sb: dict(token=TOKENS["acme"], tokens=TOKENS),
            "not both",
        ),
        (lambda sb: dict(tokens={}), "non-empty dict"),
        (lambda sb: dict(tokens={"acme": "bad token"}), r"tokens\['acme'\] has characters"),
    ],
    ids=["no-tokens", "a-workspace-without-token", "both", "empty", "malformed"],
)
def test_workspaces_and_tokens_must_match_before_anything_is_sent(many, call, message):
    before = many.stats["requests"]
    with pytest.raises(ij.ConfigurationError, match=message) as caught:
        ij.fetch_jobs(frame_of(many, n=3), base_url=many.base_url, progress=False, **call(many))
    for token in TOKENS.values():
        assert token not in str(caught.value)
    assert many.stats["requests"] == before


def test_tokens_need_a_workspace_column(many):
    with pytest.raises(ij.ConfigurationError, match="needs a DataFrame with a workspace column"):
        ij.fetch_jobs(many.job_ids[:3], tokens=TOKENS, base_url=many.base_url, progress=False)


def test_a_row_without_a_workspace_name_is_refused(many):
    frame = frame_of(many, n=2)
    frame.loc[3, "workspace"] = None
    with pytest.raises(ij.ConfigurationError, match="rows have no workspace name"):
        ij.fetch_jobs(frame, tokens=TOKENS, base_url=many.base_url, progress=False)


def test_one_workspace_column_needs_no_tokens_and_is_kept(many):
    frame = frame_of(many, ("acme",), 10)
    df = ij.fetch_jobs(frame, token=TOKENS["acme"], base_url=many.base_url, progress=False)
    assert (df["workspace"] == "acme").all() and df["error_code"].isna().all()


def test_a_slow_workspace_never_holds_another_back():
    """acme's budget is 10 requests a window of 2 s; globex's 10 jobs must not wait for it."""
    seen = []
    clock = FakeClock()  # the windows pass in milliseconds
    with Sandbox(
        jobs=60,
        token=TOKENS["acme"],
        workspace="acme",
        tokens={TOKENS["globex"]: "globex"},
        rate_limit=10,
        window=2,
        pending_share=0.0,
        clock=clock,
    ) as sb:
        rows = [{"workspace": "acme", "job_id": j} for j in sb.job_ids[:40]]
        rows += [{"workspace": "globex", "job_id": j} for j in sb.job_ids[:10]]
        df = fetch_jobs_on(
            clock,
            pd.DataFrame(rows),
            tokens={k: TOKENS[k] for k in ("acme", "globex")},
            base_url=sb.base_url,
            progress=seen.append,
            max_workers=4,
        )
        assert sb.refused("acme") == 0 and sb.refused("globex") == 0
        windows = sb.stats["workspaces"]
    assert df["error_code"].isna().all() and len(df) == 50
    # globex's 10 were served in one window, its own budget (not a share of acme's), while
    # acme took four.
    served = {ws: [w["start"] for w in windows[ws] if w["served"]] for ws in ("acme", "globex")}
    assert len(served["acme"]) >= 4
    assert len(served["globex"]) == 1 and served["globex"][0] < served["acme"][-1], served
    # Progress per workspace: the last snapshot says each is done.
    assert dict(seen[-1].workspaces) == {"acme": (40, 40), "globex": (10, 10)}


def test_a_checkpoint_keeps_each_workspace_apart_and_resumes(many, tmp_path):
    path = tmp_path / "jobs.sqlite"
    first = ij.fetch_jobs(
        frame_of(many), tokens=TOKENS, base_url=many.base_url, progress=False, checkpoint=path
    )
    asked = many.stats["requests"]
    again = ij.fetch_jobs(
        frame_of(many), tokens=TOKENS, base_url=many.base_url, progress=False, checkpoint=path
    )
    # Only the pending rows (not final) were asked again: 3 /me and the pending ones.
    pending = int((~first["final"]).sum())
    assert many.stats["requests"] - asked == pending + 3
    pd.testing.assert_frame_equal(comparable(first), comparable(again))
    # A checkpoint of rows keyed by (workspace, job_id): the same id, three rows.
    with Checkpoint(path, many.base_url) as cp:
        keys = set(cp.rows())
    assert len(keys) == 180
    assert ("acme", many.job_ids[0]) in keys and ("globex", many.job_ids[0]) in keys


def test_a_checkpoint_refuses_swapped_tokens_before_any_job_is_asked(many, tmp_path):
    path = tmp_path / "jobs.sqlite"
    frame = frame_of(many, ("acme", "globex"), 5)
    two = {k: TOKENS[k] for k in ("acme", "globex")}
    ij.fetch_jobs(frame, tokens=two, base_url=many.base_url, progress=False, checkpoint=path)
    swapped = {"acme": TOKENS["globex"], "globex": TOKENS["acme"]}
    before = many.stats["requests"]
    with pytest.raises(ij.ConfigurationError, match="another workspace than the token of"):
        ij.fetch_jobs(
            frame, tokens=swapped, base_url=many.base_url, progress=False, checkpoint=path
        )
    assert many.stats["requests"] - before <= 2  # the /me requests only: no job was asked


def test_a_checkpoint_of_one_workspace_is_not_used_for_many(many, tmp_path):
    path = tmp_path / "jobs.sqlite"
    ij.fetch_jobs(
        many.job_ids[:3],
        token=TOKENS["acme"],
        base_url=many.base_url,
        progress=False,
        checkpoint=path,
    )
    with pytest.raises(ij.ConfigurationError, match="holds one workspace's rows"):
        ij.fetch_jobs(
            frame_of(many, n=3),
            tokens=TOKENS,
            base_url=many.base_url,
            progress=False,
            checkpoint=path,
        )


def test_refresh_and_wait_keep_the_workspaces(many):
    df = ij.fetch_jobs(frame_of(many), tokens=TOKENS, base_url=many.base_url, progress=False)
    pending = int((~df["final"]).sum())
    assert pending > 0
    asked = many.stats["requests"]
    again = ij.refresh(df, tokens=TOKENS, base_url=many.base_url, progress=False)
    assert many.stats["requests"] - asked == pending  # only what may change, each once
    pd.testing.assert_frame_equal(comparable(df), comparable(again))
    many.finish_all()
    done = ij.wait_for_jobs(
        again, tokens=TOKENS, base_url=many.base_url, progress=False, poll_interval=0.05
    )
    assert done["final"].all() and done["workspace"].tolist() == df["workspace"].tolist()
    assert (done["mine"] == df["mine"]).all()


# -- the CLI: --workspaces ---------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INTERCOM_", "IJ_TEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "intercom_jobs_nb", *args],
        env={**base, "TQDM_DISABLE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_runs_many_workspaces_from_a_csv(many, tmp_path):
    ids = tmp_path / "ids.csv"
    frame_of(many, n=20).to_csv(ids, index=False)
    workspaces = tmp_path / "workspaces.csv"
    workspaces.write_text(
        "workspace,token_env\n" + "".join(f"{n},IJ_TEST_{n.upper()}\n" for n in TOKENS)
    )
    env = {f"IJ_TEST_{n.upper()}": t for n, t in TOKENS.items()}
    out = tmp_path / "out.csv"
    done = run_cli(
        "fetch", str(ids), "--workspaces", str(workspaces), "--base-url", many.base_url,
        "--out", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(df) == 60 and set(df["workspace"]) == set(TOKENS)
    assert (df["error_code"] == "").all()
    for token in TOKENS.values():
        assert token not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "table, env, message",
    [
        ("workspace,token_env\nacme,IJ_TEST_ACME\n", {}, "set IJ_TEST_ACME"),
        ("name,env\nacme,X\n", {}, "needs the columns workspace and token_env"),
        ("workspace,token_env\nacme,not a name\n", {}, "line 2: needs a workspace name"),
        ("workspace,token_env\nacme,A\nacme,B\n", {"A": "x", "B": "y"}, "listed twice"),
    ],
    ids=["unset-variable", "columns", "bad-variable-name", "twice"],
)
def test_the_cli_refuses_a_bad_workspaces_file_with_exit_2(many, tmp_path, table, env, message):
    ids = tmp_path / "ids.csv"
    frame_of(many, ("acme",), 3).to_csv(ids, index=False)
    workspaces = tmp_path / "workspaces.csv"
    workspaces.write_text(table)
    before = many.stats["requests"]
    done = run_cli(
        "fetch", str(ids), "--workspaces", str(workspaces), "--base-url", many.base_url, env=env
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert many.stats["requests"] == before


def test_tickets_are_fetched_one_workspace_at_a_time(many):
    df = ij.fetch_jobs(frame_of(many, n=5), tokens=TOKENS, base_url=many.base_url, progress=False)
    with pytest.raises(ij.ConfigurationError, match="one workspace at a time"):
        ij.fetch_tickets(df, token=TOKENS["acme"], base_url=many.base_url, progress=False)
    before = many.stats["requests"]
    with pytest.raises(ij.ConfigurationError, match="tickets=True is for one workspace"):
        ij.wait_for_jobs(
            df, tokens=TOKENS, base_url=many.base_url, progress=False, tickets=True,
            timeout=0, poll_interval=0,
        )  # fmt: skip
    assert many.stats["requests"] == before
    mine = df[df["workspace"] == "acme"]
    out = ij.fetch_tickets(mine, token=TOKENS["acme"], base_url=many.base_url, progress=False)
    assert len(out) == len(mine)


# -- the panel: a frame of many workspaces and tokens= ----------------------------------------


def panel_controller(sb: Sandbox, job_ids, **kwargs):
    from intercom_jobs_nb._panel_controller import PanelController

    kwargs.setdefault("tokens", TOKENS)
    return PanelController(job_ids, base_url=sb.base_url, retries=0, timeout=5.0, **kwargs)


def test_the_panel_runs_many_workspaces_each_with_its_token(many):
    from intercom_jobs_nb._panel_render import status_html

    c = panel_controller(many, frame_of(many))
    assert c.state == "ready" and c.has_token() and c.many
    assert c.message == "Ready: 180 job ids in 3 workspaces; click Refresh."
    assert "3 workspaces" in c.token_note() and "tok-" not in c.token_note()
    shown: list[str] = []

    def record(what: str) -> None:
        if what == "status" and c.snapshot is not None:
            shown.append(status_html(c.state, c.message, snapshot=c.snapshot))

    c.on_change(record)
    assert c.refresh(block=True) and c.state == "finished", c.message
    # The same rows as a call per workspace, each row with its workspace, beside its id.
    pd.testing.assert_frame_equal(comparable(c.df), comparable(one_by_one(many)))
    assert c.table.columns[:2] == ["job_id", "workspace"]
    # While it ran, the status said how far each workspace was.
    assert shown and all(f"{name}: " in shown[-1] for name in TOKENS), shown[-1]
    assert "60/60" in shown[-1]
    # A second Refresh asks only the rows that may change, each in its own workspace.
    pending = int((~c.df["final"]).sum())
    asked = many.stats["requests"]
    assert c.refresh(block=True) and c.state == "finished"
    assert many.stats["requests"] - asked == pending
    pd.testing.assert_frame_equal(comparable(c.df), comparable(one_by_one(many)))


def test_the_panel_refuses_ids_and_tokens_that_do_not_fit(many):
    from intercom_jobs_nb._panel_controller import PanelController

    before = many.stats["requests"]
    no_column = panel_controller(many, many.job_ids[:5])
    assert no_column.state == "error" and "workspace column" in no_column.message
    no_tokens = PanelController(frame_of(many), base_url=many.base_url)
    assert no_tokens.state == "error" and "tokens=" in no_tokens.message
    lacking = panel_controller(many, frame_of(many), tokens={"acme": TOKENS["acme"]})
    assert lacking.state == "error" and "no token for the workspaces globex" in lacking.message
    with pytest.raises(ij.ConfigurationError, match="not both"):
        panel_controller(many, frame_of(many), token=TOKENS["acme"])
    with pytest.raises(ij.ConfigurationError, match="many workspaces"):
        panel_controller(many, frame_of(many)).set_ids_text("1001")
    assert many.stats["requests"] == before


def test_a_rejected_token_names_its_workspace_and_is_not_shown(many):
    c = panel_controller(many, frame_of(many), tokens={**TOKENS, "globex": "tok-wrong-globex"})
    assert c.refresh(block=True)
    assert c.state == "error" and "workspace globex" in c.message, c.message
    assert "tok-wrong-globex" not in c.message + (c.detail or "")
    assert c.has_token()  # tokens given in code are kept: there is nothing to type


def test_an_upload_to_the_panel_of_many_needs_a_workspace_column(many):
    c = panel_controller(many, frame_of(many, n=2))
    text = "workspace,job_id\n" + "".join(f"globex,{j}\n" for j in many.job_ids[:7])
    c.upload([{"name": "globex.csv", "content": text.encode()}])
    assert c.ids_input.upload_note.text.startswith("Read 7 job ids"), c.ids_input.upload_note
    assert c.ids_input.workspaces == ["globex"] * 7 and c.ids == many.job_ids[:7]
    assert c.ids_input.text.splitlines()[0] == f"globex,{many.job_ids[0]}"
    assert c.refresh(block=True) and set(c.df["workspace"]) == {"globex"} and len(c.df) == 7
    c.upload([{"name": "plain.txt", "content": b"1001\n1002\n"}])
    assert (
        c.ids_input.upload_note.kind == "error"
        and "workspace column" in c.ids_input.upload_note.text
    )
    assert c.ids == many.job_ids[:7]  # the ids before are kept


def test_an_upload_of_many_workspaces_to_a_panel_of_one_is_refused(many):
    from intercom_jobs_nb._panel_controller import PanelController

    c = PanelController(["1001"], base_url=many.base_url, token=TOKENS["acme"])
    text = "workspace,job_id\nacme,1001\nglobex,1001\n"
    c.upload([{"name": "two.csv", "content": text.encode()}])
    note = c.ids_input.upload_note
    assert note.kind == "error" and "tokens=" in note.text
    assert c.ids == ["1001"]


def test_the_panel_widgets_of_many_workspaces(many):
    from intercom_jobs_nb._widgets import JobsPanel

    panel = JobsPanel(frame_of(many, n=10), tokens=TOKENS, base_url=many.base_url, retries=0)
    try:
        assert panel.many  # the page makes the Token field and the ids box read-only
        panel._on_message(panel, {"type": "refresh", "token": ""}, [])  # a click on Refresh
        assert panel.wait(timeout=30) and panel.controller.state == "finished"
        assert panel.columns[:2] == ["job_id", "workspace"]
        assert "globex" in {row[1] for row in panel.window["rows"]}
        assert "token=given for 3 workspaces" in repr(panel)
        assert "tok-" not in json.dumps(panel.get_state(), default=str)
    finally:
        panel.close()
