"""`ij.Client` holds a run's options; `ij.MockTransport` answers from a function.

Everything here runs with no socket and no server: the transport is a plain function, as a
user's notebook tests would have it. The network itself is tested against loopback servers
(tests/test_transport.py, the sandbox).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._cli import build_parser
from intercom_jobs_nb._options import OPTIONS, ClientOptions, Options
from intercom_jobs_nb._pacing import shared_gate
from intercom_jobs_nb._transport import MAX_BODY

TOKEN = "mock-token-0123456789"


def intercom(request):
    """A small Intercom: every job succeeded and made ticket 9<id>; /me is workspace acme."""
    if request.path == "/me":
        return {"type": "admin", "app": {"id_code": "acme"}}
    if request.path == "/tickets/enqueue":
        return {"type": "job", "id": f"j{request.json()['ticket_attributes']['_default_title_']}"}
    kind, _, key = request.path.rpartition("/")
    if kind == "/jobs/status":
        return {"id": key, "status": "success", "resource_type": "ticket", "resource_id": f"9{key}"}
    if kind == "/tickets":
        return {"type": "ticket", "id": key, "ticket_id": f"T{key}", "open": True}
    return ij.Response(404, json={"type": "error.list", "errors": [{"code": "not_found"}]})


def client_of(handler=intercom, **options):
    options.setdefault("progress", False)
    options.setdefault("retries", 1)
    return ij.Client(token=TOKEN, transport=ij.MockTransport(handler), **options)


# -- the client --------------------------------------------------------------------------------


def test_a_client_fetches_jobs_through_its_transport():
    with client_of() as client:
        df = client.fetch_jobs(["1", "2", "2"])
    assert df["job_id"].tolist() == ["1", "2"]
    assert df["status"].tolist() == ["success", "success"]
    assert df["resource_id"].tolist() == ["91", "92"]


def test_a_client_fetches_one_job_as_a_dict():
    with client_of() as client:
        assert client.fetch_job(7)["resource_id"] == "97"


def test_a_client_refreshes_only_rows_that_may_change():
    asked = []

    def pending_first(request):
        asked.append(request.path)
        status = "pending" if len(asked) == 1 else "success"
        return {"id": request.path.rsplit("/", 1)[-1], "status": status}

    with client_of(pending_first) as client:
        first = client.fetch_jobs(["1"])
        assert first["status"].tolist() == ["pending"]
        again = client.refresh(first)
        assert again["status"].tolist() == ["success"]
        client.refresh(again)  # final now: nothing is asked
    assert asked == ["/jobs/status/1", "/jobs/status/1"]


def test_a_client_waits_for_jobs_then_fetches_their_tickets():
    seen = {"n": 0}
    lock = threading.Lock()

    def slow_jobs(request):
        if request.path.startswith("/jobs/"):
            with lock:
                seen["n"] += 1
                if seen["n"] <= 2:
                    return {"id": request.path.rsplit("/", 1)[-1], "status": "pending"}
        return intercom(request)

    with client_of(slow_jobs) as client:
        df = client.wait_for_jobs(["1", "2"], poll_interval=0, tickets=True)
    assert df["status"].tolist() == ["success", "success"]
    assert df["ticket_id"].tolist() == ["T91", "T92"]
    assert df.attrs["timed_out"] is False


def test_a_client_enqueues_tickets_with_a_ledger(tmp_path):
    rows = [
        {"key": "a", "contact_email": "a@example.com", "title": "one"},
        {"key": "b", "contact_email": "b@example.com", "title": "two"},
    ]
    with client_of() as client:
        out = client.enqueue_tickets(rows, ledger=tmp_path / "l.sqlite", ticket_type_id="88")
        again = client.enqueue_tickets(rows, ledger=tmp_path / "l.sqlite", ticket_type_id="88")
    assert out["enqueue_status"].tolist() == ["enqueued", "enqueued"]
    assert out["job_id"].tolist() == ["jone", "jtwo"]
    assert again["job_id"].tolist() == ["jone", "jtwo"]  # from the ledger, not sent again


def test_the_module_functions_are_calls_through_a_client():
    transport = ij.MockTransport(intercom)
    df = ij.fetch_jobs(["3"], token=TOKEN, transport=transport, progress=False)
    tickets = ij.fetch_tickets(df, token=TOKEN, transport=transport, progress=False)
    assert tickets["ticket_id"].tolist() == ["T93"]
    assert transport.calls == 2


class Closable:
    def __init__(self):
        self.closed = 0

    def handle(self, request):
        return ij.MockTransport(intercom).handle(request)

    def close(self):
        self.closed += 1


def test_leaving_the_with_block_closes_the_transport_once():
    transport = Closable()
    with ij.Client(token=TOKEN, transport=transport, progress=False) as client:
        assert client.fetch_job("1")["status"] == "success"
        assert transport.closed == 0
    client.close()
    assert transport.closed == 1


def test_a_closed_client_refuses_to_run():
    client = client_of()
    client.close()
    with pytest.raises(ij.ConfigurationError, match="closed"):
        client.fetch_jobs(["1"])


def test_the_options_are_checked_when_the_client_is_made():
    with pytest.raises(ij.ConfigurationError, match="max_workers"):
        ij.Client(token=TOKEN, max_workers=0)
    with pytest.raises(ij.ConfigurationError, match="transport"):
        ij.Client(token=TOKEN, transport="http://example.com")


@pytest.mark.parametrize(
    ("call", "typo", "nearest"),
    [
        (lambda **kw: ij.Client(**kw), "max_worker", "max_workers"),
        (lambda **kw: ij.fetch_jobs(["1"], **kw), "retry", "retries"),
        (lambda **kw: ij.wait_for_jobs(["1"], **kw), "progres", "progress"),
        (lambda **kw: ij.JobsPanel(["1"], **kw), "base_uri", "base_url"),
    ],
)
def test_an_unknown_keyword_names_the_nearest_option(call, typo, nearest):
    with pytest.raises(TypeError, match=f"{typo!r}; did you mean {nearest!r}"):
        call(token=TOKEN, **{typo: 1})


def test_the_declaration_the_defaults_the_options_and_the_cli_agree():
    declared = ClientOptions.__optional_keys__
    assert set(OPTIONS) == declared
    fields = {f.name for f in dataclasses.fields(Options)}
    assert fields == declared - {"region"}  # region becomes base_url
    built = Options.build(token=TOKEN)
    for name in fields - {"token", "base_url"}:
        assert getattr(built, name) == OPTIONS[name].default, name
    fetch = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices["fetch"]._actions  # noqa: SLF001
        if a.dest == "region"
    )
    assert fetch.default == OPTIONS["region"].default
    flags = {
        action.dest
        for action in build_parser()._subparsers._group_actions[0].choices["fetch"]._actions  # noqa: SLF001
    }
    wanted = {name for name, option in OPTIONS.items() if option.metavar} | {"no_progress"}
    assert wanted <= flags
    assert not ({"token", "tokens", "transport"} & flags)  # never a flag


# -- MockTransport -----------------------------------------------------------------------------


def test_a_notebook_tests_its_own_analysis_with_no_server():
    """What a user's notebook cell does: stand in for Intercom, run the analysis, check it."""

    def share_failed(ids, **options):  # the user's analysis
        df = ij.fetch_jobs(ids, **options)
        return ij.summarize(df).loc[("status", "failed"), "share"]

    def half_failed(request):
        job_id = int(request.path.rsplit("/", 1)[-1])
        return {"id": str(job_id), "status": "failed" if job_id % 2 else "success"}

    transport = ij.MockTransport(half_failed)
    assert share_failed(range(1, 11), token="x", transport=transport, progress=False) == 0.5


def test_a_handler_gets_the_request_with_the_token_and_version():
    got = []

    def record(request):
        got.append(request)
        return intercom(request)

    with client_of(record, base_url="https://example.test", api_version="2.11") as client:
        client.fetch_job("5")
    (request,) = got
    assert request.method == "GET"
    assert request.url == "https://example.test/jobs/status/5"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Intercom-Version"] == "2.11"
    assert request.body is None


def test_an_oserror_in_the_handler_is_a_connection_error_row():
    def down(request):
        raise ConnectionResetError("reset by peer")

    with client_of(down) as client:
        df = client.fetch_jobs(["1"])
    assert df["error_code"].tolist() == ["connection_error"]
    assert "ConnectionResetError: reset by peer" in df["error_message"].iloc[0]
    assert df["attempts"].tolist() == [2]  # retried, as the network's would be


def test_a_timeout_in_the_handler_is_a_timeout_row():
    def slow(request):
        raise TimeoutError("too slow")

    with client_of(slow, retries=0) as client:
        df = client.fetch_jobs(["1"])
    assert df["error_code"].tolist() == ["timeout"]


def test_refused_connections_from_the_handler_end_the_run_as_unreachable():
    def refused(request):
        raise ConnectionRefusedError("refused")

    with client_of(refused, retries=2) as client, pytest.raises(ij.UnreachableError):
        client.fetch_jobs([str(n) for n in range(20)])


def test_a_bug_in_the_handler_ends_the_run_with_the_rows_so_far():
    def buggy(request):
        job_id = request.path.rsplit("/", 1)[-1]
        if job_id == "13":
            raise ValueError("a bug in the handler")
        return intercom(request)

    with client_of(buggy, max_workers=1) as client, pytest.raises(ij.RunFailedError) as caught:
        client.fetch_jobs([str(n) for n in range(10, 20)])
    df = caught.value.df
    assert isinstance(df, pd.DataFrame) and len(df) >= 3
    assert not (df["error_code"] == "connection_error").any()
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_handler_may_answer_with_a_response_and_its_headers():
    def not_found(request):
        return ij.Response(
            404,
            json={"type": "error.list", "errors": [{"code": "job_not_found", "message": "no"}]},
            headers={"X-Request-Id": "req-1"},
        )

    with client_of(not_found) as client:
        df = client.fetch_jobs(["1"])
    assert df["error_code"].tolist() == ["job_not_found"]
    assert df["request_id"].tolist() == ["req-1"]
    with client_of(not_found) as client, pytest.raises(ij.JobNotFoundError):
        client.fetch_job("1")


def test_an_answer_larger_than_the_bound_is_invalid():
    def huge(request):
        return ij.Response(200, content=b" " * (MAX_BODY + 1))

    with client_of(huge, retries=0) as client:
        df = client.fetch_jobs(["1"])
    assert df["error_code"].tolist() == ["invalid_response"]
    assert "larger than" in df["error_message"].iloc[0]


def test_a_rejected_token_from_the_handler_stops_the_run():
    def rejecting(request):
        return ij.Response(401, json={"type": "error.list", "errors": [{"code": "unauthorized"}]})

    with client_of(rejecting) as client, pytest.raises(ij.AuthenticationError) as caught:
        client.fetch_jobs(["1", "2"])
    assert TOKEN not in str(caught.value)


def test_a_handler_returning_something_else_is_a_bug():
    with client_of(lambda request: 200) as client, pytest.raises(ij.RunFailedError):
        client.fetch_jobs(["1"])


def test_the_rate_limit_headers_of_a_mock_hold_the_requests():
    """A 429 with Retry-After: 1 holds every worker a second (the pacing gate read it); the
    retry is then answered."""
    times: list[float] = []
    lock = threading.Lock()

    def limited(request):
        with lock:
            times.append(time.monotonic())
            first = len(times) == 1
        if first:
            return ij.Response(429, headers={"Retry-After": "1"})
        return intercom(request)

    with client_of(limited, max_workers=1) as client:
        df = client.fetch_jobs(["1"])
    assert df["status"].tolist() == ["success"]
    assert df["attempts"].tolist() == [2]
    assert times[1] - times[0] >= 0.9


def test_a_mock_run_does_not_share_the_pacing_gate_of_the_real_host():
    def spent(request):
        reset = int(time.time()) + 8
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                   "X-RateLimit-Reset": str(reset)}  # fmt: skip
        return ij.Response(200, json=intercom(request), headers=headers)

    with client_of(spent, base_url="https://api.intercom.io") as client:
        client.fetch_jobs(["1"])
    assert shared_gate(TOKEN, "https://api.intercom.io").status().limit is None


def test_a_panel_runs_through_a_mock():
    from intercom_jobs_nb._panel_controller import PanelController

    controller = PanelController(["1", "2"], token=TOKEN, transport=ij.MockTransport(intercom))
    controller.refresh(block=True)
    assert controller.state == "finished"
    assert controller.df["status"].tolist() == ["success", "success"]


# -- the documentation's examples run as written -------------------------------------------------


@pytest.mark.parametrize("where", [ij.Client, ij.MockTransport, "intercom_jobs_nb._transports"])
def test_the_docstring_examples_run(where):
    import doctest
    import importlib

    # The public classes say they are the package's (``__module__``), so doctest's own search
    # of their modules passes them over: each is searched itself (module=False: every member).
    obj = importlib.import_module(where) if isinstance(where, str) else where
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(
        obj, getattr(obj, "__name__", str(obj)), module=False, globs={"ij": ij}
    ):
        runner.run(test)
    found = runner.summarize(verbose=False)
    assert found.attempted > 0 and found.failed == 0


def test_the_readme_example_runs():
    def intercom(request):  # answers as Intercom would, from a function
        job_id = request.path.rsplit("/", 1)[-1]
        return {"id": job_id, "status": "failed" if job_id == "2" else "success"}

    with ij.Client(token="test", transport=ij.MockTransport(intercom), progress=False) as client:
        df = client.fetch_jobs(["1", "2", "3"])  # no server, no socket: the real engine
    assert ij.summarize(df).loc[("status", "failed"), "count"] == 1
