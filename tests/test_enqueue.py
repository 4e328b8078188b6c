"""Enqueue: `ij.enqueue_tickets` creates one ticket per row and never two for one key.

What is sent again (the one retry loop's `ENQUEUE_POLICY`) is first specified with a
`MockIntercom` answering from a function, with no socket. Every other test talks to a real
`ij.Sandbox` over loopback sockets. The per-key count of tickets
comes from the sandbox (``count_tickets(by="row_key")``: each row carries its key in an
``attr:row_key`` ticket attribute), the number of requests from its stats, and what was
sent from the ledger (``Ledger(path, base_url)``). The last test kills a real subprocess
with SIGKILL at many instants and checks that running the same call again never makes a
second ticket for a key.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from mock_intercom import MockIntercom, error
from ticket_rows import keyed_rows

import intercom_jobs_nb as ij
from intercom_jobs_nb._enqueue import ENQUEUE_COLUMNS
from intercom_jobs_nb._ledger import Ledger

FINAL = {"enqueued", "rejected", "unknown"}
TYPE = "88"  # the sandbox's default ticket type


# -- helpers and fixtures ----------------------------------------------------------------------


def by_key(out):
    """The result frame indexed by key."""
    return out.set_index("key")


def enqueue_requests(sb):
    """Requests the sandbox received, the call's one ``GET /me`` aside."""
    return sb.stats["requests"] - 1


@pytest.fixture
def sandbox():
    """Enqueued jobs succeed at once, each making its ticket; one ticket type, 88."""
    with ij.Sandbox(jobs=0, enqueue_pending_seconds=(0, 0)) as sb:
        yield sb


@pytest.fixture
def enqueue(opts, tmp_path):
    """Call enqueue_tickets on a sandbox with one ledger per test (unless told another)."""

    def call(sb, rows, **kwargs):
        kwargs.setdefault("ledger", tmp_path / "ledger.sqlite")
        kwargs.setdefault("ticket_type_id", TYPE)
        return ij.enqueue_tickets(rows, **opts(sb, **kwargs))

    return call


def closed_port_url():
    """A loopback URL nobody listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- what is sent again: the policy, answered by a function ---------------------------------------


def enqueue_through(answers, tmp_path, **options):
    """Enqueue three keyed rows through a MockIntercom whose enqueue answers come from
    ``answers(key, tries)`` (``tries``: that key's POSTs so far, this one included)."""
    tries: dict[str, int] = {}

    def answer(body):
        key = body["ticket_attributes"]["row_key"]
        tries[key] = tries.get(key, 0) + 1
        return answers(key, tries[key])

    intercom = MockIntercom(enqueue=answer)
    options = {"retries": 2, "progress": False, "max_workers": 1, **options}
    out = ij.enqueue_tickets(
        keyed_rows(3),
        ledger=tmp_path / "ledger.sqlite",
        ticket_type_id=TYPE,
        token="mock-token",
        transport=intercom.transport,
        **options,
    )
    return out, tries


def job(key):
    return {"type": "job", "id": f"j-{key}"}


def test_policy_a_429_is_sent_again_and_makes_one_job(tmp_path):
    def answers(key, tries):
        return error(429, "rate_limit_exceeded") if key == "k0" and tries == 1 else job(key)

    out, tries = enqueue_through(answers, tmp_path)
    assert out["enqueue_status"].tolist() == ["enqueued"] * 3
    assert out["job_id"].tolist() == ["j-k0", "j-k1", "j-k2"]
    assert tries == {"k0": 2, "k1": 1, "k2": 1}


def test_policy_429s_past_the_retries_leave_the_key_not_sent(tmp_path):
    def answers(key, tries):
        return error(429, "rate_limit_exceeded") if key == "k1" else job(key)

    out, tries = enqueue_through(answers, tmp_path, retries=1)
    assert out["enqueue_status"].tolist() == ["enqueued", "not_sent", "enqueued"]
    assert tries["k1"] == 2


def test_policy_a_timeout_after_sending_is_unknown_and_never_sent_again(tmp_path):
    def answers(key, tries):
        if key == "k0":
            raise TimeoutError("no answer")
        return job(key)

    out, tries = enqueue_through(answers, tmp_path)
    assert out["enqueue_status"].tolist() == ["unknown", "enqueued", "enqueued"]
    assert out.loc[0, "enqueue_error_code"] == "timeout"
    assert "may have reached Intercom" in out.loc[0, "enqueue_error_message"]
    assert tries["k0"] == 1


def test_policy_a_failure_before_sending_is_tried_again_then_not_sent(tmp_path):
    def answers(key, tries):
        if key == "k2":
            raise ConnectionRefusedError("refused")
        return job(key)

    out, tries = enqueue_through(answers, tmp_path)
    assert out["enqueue_status"].tolist() == ["enqueued", "enqueued", "not_sent"]
    assert out.loc[2, "enqueue_error_code"] == "connection_error"
    assert tries["k2"] == 3  # retries=2: three tries, none of which left


def test_policy_a_server_error_or_an_answer_that_is_no_job_is_unknown_and_not_retried(tmp_path):
    def answers(key, tries):
        if key == "k0":
            return error(503, "service_unavailable")
        if key == "k1":
            return {"type": "admin"}
        return job(key)

    out, tries = enqueue_through(answers, tmp_path)
    assert out["enqueue_status"].tolist() == ["unknown", "unknown", "enqueued"]
    assert out["enqueue_error_code"].tolist()[:2] == ["service_unavailable", "invalid_response"]
    assert tries == {"k0": 1, "k1": 1, "k2": 1}


def test_policy_a_400_is_rejected_and_not_retried(tmp_path):
    def answers(key, tries):
        return error(400, "parameter_invalid", "bad type") if key == "k1" else job(key)

    out, tries = enqueue_through(answers, tmp_path)
    assert out["enqueue_status"].tolist() == ["enqueued", "rejected", "enqueued"]
    assert out.loc[1, "enqueue_error_message"] == "bad type"
    assert tries["k1"] == 1


# -- rows and bodies ---------------------------------------------------------------------------


def test_each_row_becomes_one_ticket_with_its_mapped_body(sandbox, enqueue):
    rows = [
        {
            "key": "a",
            "contact_id": "c-1",
            "title": "Printer on fire",
            "description": "Smoke everywhere",
            "attr:row_key": "a",
            "attr:severity": "high",
            "company_id": "co-9",
            "created_at": 1700000000,
            "skip_notifications": True,
        },
        {"key": "b", "contact_external_id": "ext-2", "title": "B", "attr:row_key": "b"},
        {"key": "c", "contact_email": "c@example.com", "attr:row_key": "c"},
    ]
    enqueue(sandbox, rows)
    bodies = {t["attributes"]["row_key"]: t["body"] for t in sandbox.tickets}
    assert bodies == {
        "a": {
            "ticket_type_id": TYPE,
            "contacts": [{"id": "c-1"}],
            "ticket_attributes": {
                "_default_title_": "Printer on fire",
                "_default_description_": "Smoke everywhere",
                "row_key": "a",
                "severity": "high",
            },
            "company_id": "co-9",
            "created_at": 1700000000,
            "skip_notifications": True,
        },
        "b": {
            "ticket_type_id": TYPE,
            "contacts": [{"external_id": "ext-2"}],
            "ticket_attributes": {"_default_title_": "B", "row_key": "b"},
        },
        "c": {
            "ticket_type_id": TYPE,
            "contacts": [{"email": "c@example.com"}],
            "ticket_attributes": {"row_key": "c"},
        },
    }


def test_the_result_is_the_input_rows_plus_the_enqueue_columns(sandbox, enqueue):
    rows = keyed_rows(3)
    out = enqueue(sandbox, rows)
    inputs = [c for c in pd.DataFrame(rows).columns if c not in ENQUEUE_COLUMNS]
    assert list(out.columns) == inputs + list(ENQUEUE_COLUMNS)
    assert out["key"].tolist() == ["k0", "k1", "k2"]
    assert out["title"].tolist() == ["Ticket 0", "Ticket 1", "Ticket 2"]


def test_an_enqueued_row_has_its_job_id_request_id_and_time(sandbox, enqueue):
    out = by_key(enqueue(sandbox, keyed_rows(3)))
    jobs = {t["attributes"]["row_key"]: t["job_id"] for t in sandbox.tickets}
    assert set(out["enqueue_status"]) == {"enqueued"}
    assert out["job_id"].to_dict() == jobs
    assert out["enqueue_request_id"].notna().all()
    assert out["enqueued_at"].notna().all()
    assert out["enqueue_error_code"].isna().all()
    assert out["enqueue_error_message"].isna().all()


def test_without_a_key_column_the_key_comes_from_the_contact_and_title_not_the_position(
    sandbox, enqueue
):
    frame = pd.DataFrame({"contact_id": ["c1", "c2"], "attr:row_key": ["x", "y"]}, index=[10, 20])
    out = enqueue(sandbox, frame)
    keys = out["key"].tolist()
    assert all(k.startswith("auto-") for k in keys) and keys[0] != keys[1]
    sent = enqueue_requests(sandbox)
    moved = enqueue(sandbox, frame.iloc[::-1].set_axis([0, 1]))  # the same ledger
    assert moved["key"].tolist() == keys[::-1]
    assert moved["job_id"].tolist() == out["job_id"].tolist()[::-1]
    assert enqueue_requests(sandbox) == sent + 1  # its GET /me only
    assert out["enqueue_status"].tolist() == ["enqueued", "enqueued"]


def test_a_csv_path_is_read_as_rows(sandbox, enqueue, tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame(
        [
            {
                "key": "r1",
                "contact_email": "r1@example.com",
                "title": "From CSV",
                "description": "",
                "attr:row_key": "r1",
                "created_at": "2024-01-02T03:04:05Z",
                "skip_notifications": "false",
            }
        ]
    ).to_csv(path, index=False)
    out = enqueue(sandbox, path)
    assert out["enqueue_status"].tolist() == ["enqueued"]
    [ticket] = sandbox.tickets
    assert ticket["body"] == {
        "ticket_type_id": TYPE,
        "contacts": [{"email": "r1@example.com"}],
        "ticket_attributes": {"_default_title_": "From CSV", "row_key": "r1"},
        "created_at": int(pd.Timestamp("2024-01-02T03:04:05Z").timestamp()),
        "skip_notifications": False,
    }


def test_a_ticket_type_id_column_overrides_the_argument(enqueue):
    with ij.Sandbox(
        jobs=0, enqueue_pending_seconds=(0, 0), ticket_types={"88": "Bug", "99": "Question"}
    ) as sb:
        rows = keyed_rows(2)
        rows[0]["ticket_type_id"] = "99"
        enqueue(sb, rows, ticket_type_id="88")
        assert sb.count_tickets(by=lambda t: (t["attributes"]["row_key"], t["ticket_type_id"])) == {
            ("k0", "99"): 1,
            ("k1", "88"): 1,
        }


def test_repeated_keys_are_refused_naming_them_and_nothing_is_sent(sandbox, enqueue):
    rows = keyed_rows(4)
    rows[1]["key"] = "k0"
    rows[3]["key"] = "k2"
    with pytest.raises(ij.ConfigurationError, match=r"k0, k2"):
        enqueue(sandbox, rows)
    assert sandbox.stats["requests"] == 0
    assert sandbox.enqueued == 0


def test_a_row_without_a_contact_is_rejected_as_invalid_and_never_sent(sandbox, enqueue):
    rows = keyed_rows(3)
    del rows[1]["contact_id"]
    out = by_key(enqueue(sandbox, rows))
    assert out.loc["k1", "enqueue_status"] == "rejected"
    assert out.loc["k1", "enqueue_error_code"] == "invalid_row"
    assert "contact" in out.loc["k1", "enqueue_error_message"]
    assert sandbox.count_tickets(by="row_key") == {"k0": 1, "k2": 1}
    assert enqueue_requests(sandbox) == 2


def test_a_row_without_a_ticket_type_is_rejected_as_invalid_and_never_sent(sandbox, enqueue):
    rows = keyed_rows(3)
    rows[0]["ticket_type_id"] = TYPE  # only this row names a type; no argument given
    out = by_key(enqueue(sandbox, rows, ticket_type_id=None))
    assert out["enqueue_status"].tolist() == ["enqueued", "rejected", "rejected"]
    assert set(out.loc[["k1", "k2"], "enqueue_error_code"]) == {"invalid_row"}
    assert out.loc["k1", "enqueue_error_message"].startswith("no ticket type")
    assert sandbox.count_tickets(by="row_key") == {"k0": 1}
    assert enqueue_requests(sandbox) == 1


# -- Intercom's refusals and resuming ----------------------------------------------------------


def test_intercoms_400_is_rejected_with_its_message(sandbox, enqueue):
    rows = keyed_rows(2)
    rows[1]["ticket_type_id"] = "12345"  # a type the workspace does not have
    out = by_key(enqueue(sandbox, rows))
    assert out.loc["k1", "enqueue_status"] == "rejected"
    assert out.loc["k1", "enqueue_error_code"] == "parameter_invalid"
    assert out.loc["k1", "enqueue_error_message"] == "Ticket type not found"
    assert pd.notna(out.loc["k1", "enqueue_request_id"])
    assert pd.isna(out.loc["k1", "job_id"])


def test_a_rejected_key_whose_row_is_unchanged_is_not_resent_and_says_so(sandbox, enqueue):
    rows = keyed_rows(2)
    rows[1]["ticket_type_id"] = "12345"
    first = enqueue(sandbox, rows)
    sandbox.reset_stats()
    second = enqueue(sandbox, rows)
    assert enqueue_requests(sandbox) == 0
    assert second["enqueue_status"].tolist() == first["enqueue_status"].tolist()
    assert second["enqueue_error_code"].tolist() == first["enqueue_error_code"].tolist()
    message = second.set_index("key").loc["k1", "enqueue_error_message"]
    assert message.startswith("Ticket type not found")
    assert "earlier run" in message and "unchanged" in message


def test_a_resumed_call_sends_nothing_already_enqueued_and_returns_the_same_jobs(sandbox, enqueue):
    rows = keyed_rows(5)
    first = enqueue(sandbox, rows)
    second = enqueue(sandbox, rows)
    assert sandbox.enqueued == 5
    assert second["job_id"].tolist() == first["job_id"].tolist()
    assert second["enqueue_status"].tolist() == ["enqueued"] * 5
    assert sandbox.count_tickets(by="row_key") == {f"k{i}": 1 for i in range(5)}


def test_a_resumed_call_sends_only_the_keys_never_sent(sandbox, enqueue):
    rows = keyed_rows(5)
    enqueue(sandbox, rows[:2])
    sandbox.reset_stats()
    out = enqueue(sandbox, rows)
    assert enqueue_requests(sandbox) == 3
    assert out["enqueue_status"].tolist() == ["enqueued"] * 5
    assert sandbox.count_tickets(by="row_key") == {f"k{i}": 1 for i in range(5)}


# -- ambiguous answers: unknown, never resent by themselves ------------------------------------


def test_a_connection_dropped_after_processing_leaves_the_key_unknown(sandbox, enqueue):
    sandbox.inject_enqueue("drop_after")
    out = enqueue(sandbox, keyed_rows(3), max_workers=1)
    assert out["enqueue_status"].tolist() == ["unknown", "enqueued", "enqueued"]
    assert out.loc[0, "enqueue_error_code"] == "connection_error"
    assert pd.isna(out.loc[0, "job_id"])
    assert sandbox.enqueued == 3  # the sandbox did create the first key's job
    assert enqueue_requests(sandbox) == 3


def test_an_unknown_key_is_not_resent_on_resume(sandbox, enqueue):
    sandbox.inject_enqueue("drop_after")
    rows = keyed_rows(3)
    enqueue(sandbox, rows, max_workers=1)
    second = enqueue(sandbox, rows)
    sandbox.finish_all()
    assert second["enqueue_status"].tolist() == ["unknown", "enqueued", "enqueued"]
    assert sandbox.enqueued == 3
    assert sandbox.count_tickets(by="row_key") == {"k0": 1, "k1": 1, "k2": 1}


def test_an_unknown_key_is_resent_with_resend_unknown(sandbox, enqueue):
    sandbox.inject_enqueue("drop_after")
    rows = keyed_rows(3)
    enqueue(sandbox, rows, max_workers=1)
    sandbox.reset_stats()
    second = enqueue(sandbox, rows, resend_unknown=True)
    sandbox.finish_all()
    assert enqueue_requests(sandbox) == 1
    assert second["enqueue_status"].tolist() == ["enqueued"] * 3
    # resent on purpose: the dropped request had made a ticket too
    assert sandbox.count_tickets(by="row_key") == {"k0": 2, "k1": 1, "k2": 1}


def test_a_server_error_leaves_the_key_unknown_and_is_not_retried(sandbox, enqueue):
    sandbox.inject_enqueue("server_error")
    out = enqueue(sandbox, keyed_rows(3), max_workers=1)
    assert out["enqueue_status"].tolist() == ["unknown", "enqueued", "enqueued"]
    assert out.loc[0, "enqueue_error_code"] == "server_error"
    assert sandbox.stats["by_status"].get(500) == 1
    assert enqueue_requests(sandbox) == 3


def test_a_rate_limited_enqueue_is_retried_and_makes_one_ticket(enqueue):
    with ij.Sandbox(jobs=0, enqueue_pending_seconds=(0, 0), window=1) as sb:
        sb.inject_enqueue("rate_limit")
        out = enqueue(sb, keyed_rows(3), max_workers=1)
        assert out["enqueue_status"].tolist() == ["enqueued"] * 3
        assert sb.stats["by_status"].get(429) == 1
        assert sb.count_tickets(by="row_key") == {"k0": 1, "k1": 1, "k2": 1}


def test_a_connection_dropped_before_processing_is_unknown_too(sandbox, enqueue):
    # The client cannot tell "drop" from "drop_after": either may have made a ticket.
    sandbox.inject_enqueue("drop")
    out = enqueue(sandbox, keyed_rows(3), max_workers=1)
    assert out["enqueue_status"].tolist() == ["unknown", "enqueued", "enqueued"]
    assert enqueue_requests(sandbox) == 3
    assert sandbox.count_tickets(by="row_key") == {"k1": 1, "k2": 1}


# -- runs that cannot send ---------------------------------------------------------------------


def test_a_refused_connection_leaves_every_row_not_sent_and_records_nothing(opts, tmp_path):
    url = closed_port_url()
    ledger = tmp_path / "ledger.sqlite"
    with pytest.raises(ij.UnreachableError, match="connection_error") as caught:
        ij.enqueue_tickets(
            keyed_rows(3),
            ledger=ledger,
            ticket_type_id=TYPE,
            token="any-token",
            base_url=url,
            progress=False,
            retries=1,
        )
    out = caught.value.df
    assert out is not None, "the rows must come back on the exception's .df"
    assert out["enqueue_status"].tolist() == ["not_sent"] * 3
    with Ledger(str(ledger), url) as book:
        assert all(n == 0 for n in book.sent_counts().values())
        assert book.rows() == {}


def test_a_rejected_token_raises_with_every_row_not_sent_and_the_ledger_intact(
    sandbox, enqueue, tmp_path
):
    ledger = tmp_path / "ledger.sqlite"
    rows = keyed_rows(3)
    with pytest.raises(ij.AuthenticationError) as caught:
        enqueue(sandbox, rows, ledger=ledger, token="not-the-sandbox-token")
    df = caught.value.df
    assert df["key"].tolist() == ["k0", "k1", "k2"]
    assert df["enqueue_status"].tolist() == ["not_sent"] * 3
    assert sandbox.enqueued == 0
    with Ledger(str(ledger), sandbox.base_url) as book:
        assert all(n == 0 for n in book.sent_counts().values())
        assert book.rows() == {}  # no key left sending or unknown


# -- following the jobs ------------------------------------------------------------------------


def test_wait_for_jobs_follows_the_enqueued_rows_and_carries_the_others(sandbox, enqueue):
    rows = keyed_rows(3)
    del rows[1]["contact_id"]  # rejected: no job to follow
    out = enqueue(sandbox, rows)
    done = ij.wait_for_jobs(
        out, token=sandbox.token, base_url=sandbox.base_url, progress=False, poll_interval=0.05
    )
    assert done["key"].tolist() == ["k0", "k1", "k2"]
    assert done["enqueue_status"].tolist() == ["enqueued", "rejected", "enqueued"]
    jobs = set(out["job_id"].dropna())
    assert set(sandbox.stats["per_job"]) == jobs  # the row without a job was not asked
    statuses = done.set_index("key")["status"]
    assert statuses["k0"] == "success"
    assert statuses["k2"] == "success"


def test_refresh_accepts_the_enqueue_frame(sandbox, enqueue):
    rows = keyed_rows(3)
    del rows[1]["contact_id"]
    out = enqueue(sandbox, rows)
    done = ij.refresh(out, token=sandbox.token, base_url=sandbox.base_url, progress=False)
    assert done["key"].tolist() == ["k0", "k1", "k2"]
    assert set(sandbox.stats["per_job"]) == set(out["job_id"].dropna())
    assert done.set_index("key").loc[["k0", "k2"], "status"].tolist() == ["success", "success"]


# -- SIGKILL at any instant --------------------------------------------------------------------

_CHILD = """
import sys
import intercom_jobs_nb as ij
base_url, token, ledger, csv = sys.argv[1:5]
print("go", flush=True)
ij.enqueue_tickets(
    csv, ledger=ledger, ticket_type_id="88", token=token, base_url=base_url,
    progress=False, max_workers=2,
)
print("done", flush=True)
"""

KILL_ROWS = 200


def kill_rows():
    """200 rows, every 25th without a contact (rejected before sending)."""
    rows = keyed_rows(KILL_ROWS)
    for i in range(0, KILL_ROWS, 25):
        del rows[i]["contact_id"]
    return rows


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.45, 0.75, 1.1, 1.5, 1.9])
def test_a_call_killed_at_any_instant_then_run_again_never_makes_two_tickets_for_a_key(
    delay, tmp_path
):
    csv = tmp_path / "rows.csv"
    pd.DataFrame(kill_rows()).to_csv(csv, index=False)
    ledger = tmp_path / "ledger.sqlite"
    with ij.Sandbox(jobs=0, latency=0.02, enqueue_pending_seconds=(0, 0)) as sb:
        env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
        env["TQDM_DISABLE"] = "1"
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, sb.base_url, sb.token, str(ledger), str(csv)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert child.stdout.readline().strip() == b"go"
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
            child.stdout.close()

        out = ij.enqueue_tickets(
            csv,
            ledger=ledger,
            ticket_type_id=TYPE,
            token=sb.token,
            base_url=sb.base_url,
            progress=False,
        )
        sb.finish_all()
        counts = sb.count_tickets(by="row_key")

    assert all(n <= 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    assert set(out["enqueue_status"]) <= FINAL
    assert out["key"].tolist() == [f"k{i}" for i in range(KILL_ROWS)]
    status = out.set_index("key")["enqueue_status"]
    enqueued = status.index[status == "enqueued"]
    assert all(counts.get(key) == 1 for key in enqueued)
    rejected = status.index[status == "rejected"]
    assert not any(key in counts for key in rejected)
    with Ledger(str(ledger), sb.base_url) as book:
        assert all(n == 1 for n in book.sent_counts().values())
