"""fetch_tickets and wait_for_jobs(tickets=True), over real sockets.

The happy paths enqueue rows on a real `ij.Sandbox` (its enqueued jobs succeed or fail at
once), wait for the jobs and read the tickets back, comparing with what the sandbox holds
(``sb.tickets``). The hostile answers come from `tests/hostile.py`'s `HostileServer`, fed a
hand-made frame of successful jobs: each ticket id in it is answered as the test scripts.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hostile import Answer, HostileServer, error_answer
from ticket_rows import keyed_rows

import intercom_jobs_nb as ij
from intercom_jobs_nb._tickets import MAX_ATTRIBUTES, TICKET_COLUMNS
from intercom_jobs_nb._transport import MAX_BODY, MAX_FIELD

TYPE = "88"  # the sandbox's default ticket type
TICKET_PATH = "/tickets/"
TOKEN = "hostile-token-0123456789"  # long: the scrubbing of messages leaves them readable
# Columns whose values depend on the moment of the call, not on what was asked.
MOMENTS = ["fetched_at", "request_id"]


# -- helpers and fixtures ----------------------------------------------------------------------


@pytest.fixture
def sandbox():
    """Enqueued jobs are final at once; about half of them fail (and make no ticket)."""
    with ij.Sandbox(jobs=0, seed=3, enqueue_pending_seconds=(0, 0), enqueue_failed_share=0.5) as sb:
        yield sb


@pytest.fixture
def enqueued(sandbox, opts, tmp_path):
    """Six valid rows and one without a contact (rejected), enqueued on the sandbox."""
    rows = [*keyed_rows(6), {"key": "bad", "title": "no contact", "attr:row_key": "bad"}]
    return ij.enqueue_tickets(
        rows, ledger=tmp_path / "ledger.sqlite", ticket_type_id=TYPE, **opts(sandbox)
    )


@pytest.fixture
def waited(sandbox, enqueued, opts):
    """The enqueue result after wait_for_jobs: every job final, the rejected row carried."""
    return ij.wait_for_jobs(enqueued, poll_interval=0.05, **opts(sandbox))


def successful(df):
    return (df["status"] == "success").fillna(False).astype(bool)


def jobs_frame(resource_ids):
    """A frame of successful jobs naming these tickets, as fetch_jobs would give it."""
    n = len(resource_ids)
    return pd.DataFrame(
        {
            "job_id": [str(1001 + i) for i in range(n)],
            "status": ["success"] * n,
            "resource_type": ["ticket"] * n,
            "resource_id": list(resource_ids),
        }
    )


def ticket_body(resource_id, **fields):
    """The JSON of a ticket as Intercom sends it; ``fields`` override or add keys."""
    ticket = {
        "type": "ticket",
        "id": resource_id,
        "ticket_id": "7",
        "ticket_attributes": {"_default_title_": "Hello", "severity": "high"},
        "ticket_state": {
            "type": "ticket_state",
            "id": "1",
            "category": "in_progress",
            "internal_label": "Working on it",
        },
        "ticket_type": {"type": "ticket_type", "id": TYPE, "name": "Bug report"},
        "admin_assignee_id": "12",
        "team_assignee_id": "34",
        "created_at": 1700000000,
        "updated_at": 1700000100,
        "open": True,
    }
    ticket.update(fields)
    return json.dumps(ticket).encode()


def ticket_answer(resource_id, **fields):
    return Answer(200, [("Content-Type", "application/json")], ticket_body(resource_id, **fields))


def ticket_server(answers):
    """A HostileServer answering ``GET /tickets/{id}`` with ``answers[id]`` (an Answer, or a
    callable of the request), else a valid ticket of that id."""

    def handler(request):
        resource_id = request.path[len(TICKET_PATH) :]
        answer = answers.get(resource_id)
        if answer is None:
            return ticket_answer(resource_id)
        return answer(request) if callable(answer) else answer

    return HostileServer(handler)


def fetch_from(srv, df, **kwargs):
    kwargs.setdefault("retries", 2)
    return ij.fetch_tickets(df, token=TOKEN, base_url=srv.base_url, progress=False, **kwargs)


def ticket_requests(srv, resource_id):
    return srv.paths.count(TICKET_PATH + resource_id)


# -- against the sandbox ----------------------------------------------------------------------


def test_successful_jobs_get_their_tickets_columns(sandbox, waited, opts):
    out = ij.fetch_tickets(waited, **opts(sandbox))
    done = out[successful(out)]
    tickets = {t["id"]: t for t in sandbox.tickets}
    assert len(done) > 0 and set(done["resource_id"]) == set(tickets)
    assert done["ticket_open"].eq(True).all()
    for _, row in done.iterrows():
        ticket = tickets[row["resource_id"]]
        assert row["ticket_id"] == ticket["ticket_id"]
        assert row["ticket_state"] == "submitted"
        assert row["ticket_state_label"] == "Submitted"
        assert row["ticket_type"] == sandbox.ticket_types[ticket["ticket_type_id"]]
        assert row["ticket_created_at"] == pd.Timestamp(ticket["created_at"], unit="s", tz="UTC")
        assert row["ticket_updated_at"] >= row["ticket_created_at"]
        assert row["admin_assignee_id"] == "0" and row["team_assignee_id"] == "0"
        assert row["ticket_http_status"] == 200
        assert pd.isna(row["ticket_error_code"]) and pd.isna(row["ticket_error_message"])
        assert row["attr:row_key"] == ticket["attributes"]["row_key"] == row["key"]
        assert row["attr:_default_title_"] == ticket["title"]


def test_rows_without_a_successful_job_have_empty_ticket_columns(sandbox, waited, opts):
    out = ij.fetch_tickets(waited, **opts(sandbox))
    rest = out[~successful(out)]
    assert set(rest["enqueue_status"].astype(str)) == {"enqueued", "rejected"}
    assert (rest["status"] == "failed").sum() > 0  # failed jobs, and the rejected row
    assert rest.loc[rest["key"] == "bad", "job_id"].isna().all()
    assert rest[list(TICKET_COLUMNS)].isna().all().all()


def test_the_input_rows_stay_in_place_with_their_columns(sandbox, waited, opts):
    out = ij.fetch_tickets(waited, **opts(sandbox))
    assert out.index.equals(waited.index)
    assert out["key"].tolist() == waited["key"].tolist()
    assert set(TICKET_COLUMNS) <= set(out.columns)
    kept = [c for c in waited.columns if not c.startswith("attr:")]
    pd.testing.assert_frame_equal(out[kept], waited[kept])


def test_each_distinct_ticket_is_asked_once(sandbox, waited, opts):
    twice = pd.concat([waited, waited], ignore_index=True)  # every ticket named by two rows
    sandbox.reset_stats()
    out = ij.fetch_tickets(twice, **opts(sandbox))
    distinct = len(sandbox.tickets)
    assert distinct > 0
    assert sandbox.stats["requests"] == distinct
    assert sandbox.stats["by_status"] == {200: distinct}
    first, second = out.iloc[: len(waited)], out.iloc[len(waited) :]
    pd.testing.assert_frame_equal(
        first[list(TICKET_COLUMNS)].reset_index(drop=True),
        second[list(TICKET_COLUMNS)].reset_index(drop=True),
    )


def test_rows_not_successful_are_never_asked(sandbox, waited, opts):
    sandbox.reset_stats()
    ij.fetch_tickets(waited[~successful(waited)], **opts(sandbox))
    assert sandbox.stats["requests"] == 0


def test_ticket_columns_have_their_dtypes(sandbox, waited, opts):
    out = ij.fetch_tickets(waited, **opts(sandbox))
    for column in ("ticket_created_at", "ticket_updated_at"):
        assert isinstance(out[column].dtype, pd.DatetimeTZDtype)
        assert str(out[column].dt.tz) == "UTC"
    assert str(out["ticket_open"].dtype) == "boolean"
    assert str(out["ticket_http_status"].dtype) == "Int16"
    assert isinstance(out["ticket_state"].dtype, pd.CategoricalDtype)
    assert isinstance(out["ticket_error_code"].dtype, pd.CategoricalDtype)
    for column in (
        "ticket_id",
        "ticket_state_label",
        "ticket_type",
        "admin_assignee_id",
        "team_assignee_id",
        "ticket_error_message",
    ):
        assert isinstance(out[column].dtype, pd.StringDtype), column


def test_ticket_attribute_wins_over_the_input_column_of_the_same_name(sandbox, waited, opts):
    mine = waited.assign(**{"attr:row_key": "mine", "attr:_default_title_": "mine"})
    out = ij.fetch_tickets(mine, **opts(sandbox))
    done = out[successful(out)]
    assert list(out.columns).count("attr:row_key") == 1
    assert done["attr:row_key"].tolist() == done["key"].tolist()
    titles = {t["id"]: t["title"] for t in sandbox.tickets}
    assert done["attr:_default_title_"].tolist() == [titles[r] for r in done["resource_id"]]


def test_rows_without_a_ticket_keep_their_own_attribute_values(sandbox, waited, opts):
    out = ij.fetch_tickets(waited, **opts(sandbox))
    rest = out[~successful(out)]
    assert rest["attr:row_key"].tolist() == rest["key"].tolist()


def test_wait_for_jobs_with_tickets_equals_wait_then_fetch_tickets(sandbox, enqueued, opts):
    waited = ij.wait_for_jobs(enqueued, poll_interval=0.05, **opts(sandbox))
    then = ij.fetch_tickets(waited, **opts(sandbox))
    both = ij.wait_for_jobs(enqueued, poll_interval=0.05, tickets=True, **opts(sandbox))
    assert list(both.columns) == list(then.columns)
    pd.testing.assert_frame_equal(both.drop(columns=MOMENTS), then.drop(columns=MOMENTS))
    assert both.attrs["timed_out"] is False


def test_wait_for_jobs_with_tickets_follows_pending_jobs_to_their_tickets(opts, tmp_path):
    with ij.Sandbox(jobs=0, enqueue_pending_seconds=(0.3, 0.6)) as sb:
        enqueued = ij.enqueue_tickets(
            keyed_rows(3), ledger=tmp_path / "l.sqlite", ticket_type_id=TYPE, **opts(sb)
        )
        out = ij.wait_for_jobs(enqueued, poll_interval=0.1, tickets=True, **opts(sb))
        assert out["status"].eq("success").all()
        assert sorted(out["ticket_id"]) == sorted(t["ticket_id"] for t in sb.tickets)
        assert out["ticket_error_code"].isna().all()


def test_a_frame_without_status_or_resource_id_is_a_configuration_error(sandbox, opts):
    for frame in (
        pd.DataFrame({"job_id": ["1001"], "resource_id": ["5001"]}),
        pd.DataFrame({"job_id": ["1001"], "status": ["success"]}),
    ):
        with pytest.raises(ij.ConfigurationError):
            ij.fetch_tickets(frame, **opts(sandbox))
    with pytest.raises(ij.ConfigurationError):
        ij.fetch_tickets(["1001"], **opts(sandbox))
    assert sandbox.stats["requests"] == 0


def test_a_job_of_another_resource_type_is_not_asked():
    frame = jobs_frame(["5001", "5002"]).assign(resource_type=["ticket", "conversation"])
    with ticket_server({}) as srv:
        out = fetch_from(srv, frame)
        assert srv.paths == [TICKET_PATH + "5001"]
    assert out["ticket_http_status"].tolist() == [200, pd.NA]


def test_a_float_resource_id_names_its_ticket():
    frame = pd.DataFrame({"status": ["success", "failed"], "resource_id": [5001.0, float("nan")]})
    with ticket_server({}) as srv:
        out = fetch_from(srv, frame)
        assert srv.paths == [TICKET_PATH + "5001"]
    assert out.iloc[0]["ticket_id"] == "7"


# -- hostile answers ------------------------------------------------------------------------


def test_hostile_values_are_read_into_the_columns():
    with ticket_server({}) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]))
    row = out.iloc[0]
    assert row["ticket_id"] == "7"
    assert row["ticket_state"] == "in_progress"
    assert row["ticket_state_label"] == "Working on it"
    assert row["ticket_type"] == "Bug report"
    assert row["admin_assignee_id"] == "12" and row["team_assignee_id"] == "34"
    assert row["ticket_created_at"] == pd.Timestamp(1700000000, unit="s", tz="UTC")
    assert row["ticket_updated_at"] == pd.Timestamp(1700000100, unit="s", tz="UTC")
    assert row["attr:severity"] == "high"


def test_a_200_for_another_ticket_is_invalid_response():
    answers = {"5001": ticket_answer("5999")}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001", "5002"]))
    bad, good = out.iloc[0], out.iloc[1]
    assert bad["ticket_error_code"] == "invalid_response"
    assert bad["ticket_http_status"] == 200
    assert pd.isna(bad["ticket_id"]) and pd.isna(bad["ticket_state"])
    assert "another ticket" in bad["ticket_error_message"]
    assert pd.isna(good["ticket_error_code"]) and good["ticket_id"] == "7"


def test_a_404_ticket_not_found_is_that_code_and_final():
    answers = {"5001": error_answer(404, "ticket_not_found", "Ticket not found")}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]), retries=3)
        assert ticket_requests(srv, "5001") == 1  # final: never asked again
    row = out.iloc[0]
    assert row["ticket_error_code"] == "ticket_not_found"
    assert row["ticket_http_status"] == 404
    assert row["ticket_error_message"] == "Ticket not found"
    assert pd.isna(row["ticket_id"])


def test_a_500_is_server_error_after_the_retries():
    answers = {"5001": Answer(500, [("Content-Type", "text/html")], b"<h1>oops</h1>")}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]), retries=2)
        assert ticket_requests(srv, "5001") == 3  # transient: asked again while retries last
    row = out.iloc[0]
    assert row["ticket_error_code"] == "server_error"
    assert row["ticket_http_status"] == 500


def test_a_500_then_a_ticket_is_read():
    def flaky(request):
        if request.attempt == 1:
            return error_answer(500, "server_error", "try again")
        return ticket_answer("5001")

    with ticket_server({"5001": flaky}) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]), retries=2)
    assert pd.isna(out.iloc[0]["ticket_error_code"]) and out.iloc[0]["ticket_id"] == "7"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"id":"5001","x":"' + b"a" * (MAX_BODY + 10) + b'"}', id="huge"),
        pytest.param(b'{"id":"5001","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}", id="deep"),
        pytest.param(b"[1, 2, 3]", id="not-an-object"),
        pytest.param(b"<html>proxy</html>", id="not-json"),
    ],
)
def test_a_huge_deep_or_malformed_body_is_invalid_response(body):
    answers = {"5001": Answer(200, [("Content-Type", "application/json")], body)}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001", "5002"]))
    assert out.iloc[0]["ticket_error_code"] == "invalid_response"
    assert pd.isna(out.iloc[0]["ticket_id"])
    assert pd.isna(out.iloc[1]["ticket_error_code"]) and out.iloc[1]["ticket_id"] == "7"


def test_attributes_that_are_not_small_json_are_dropped():
    attributes = {
        "small": "ok",
        "number": 3,
        "flag": True,
        "tags": ["a", "b"],
        "long_text": "x" * (MAX_FIELD + 1),
        "big_list": ["y" * 100] * 100,
        "n" * 129: "name too long",
        "": "empty name",
    }
    answers = {"5001": ticket_answer("5001", ticket_attributes=attributes)}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]))
    attrs = {c[len("attr:") :]: out.iloc[0][c] for c in out.columns if c.startswith("attr:")}
    assert attrs["small"] == "ok" and attrs["number"] == 3 and bool(attrs["flag"]) is True
    assert json.loads(attrs["tags"]) == ["a", "b"]  # a list is kept as JSON text
    assert not {"long_text", "big_list", "n" * 129, ""} & set(attrs)
    assert pd.isna(out.iloc[0]["ticket_error_code"])


def test_at_most_max_attributes_are_kept():
    attributes = {f"a{i}": i for i in range(MAX_ATTRIBUTES + 50)}
    answers = {"5001": ticket_answer("5001", ticket_attributes=attributes)}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]))
    assert sum(c.startswith("attr:") for c in out.columns) == MAX_ATTRIBUTES


def test_attributes_that_are_not_an_object_are_none():
    answers = {"5001": ticket_answer("5001", ticket_attributes=["not", "an", "object"])}
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]))
    assert not any(c.startswith("attr:") for c in out.columns)
    assert out.iloc[0]["ticket_id"] == "7"


def test_fields_of_the_wrong_type_are_empty():
    answers = {
        "5001": ticket_answer(
            "5001",
            ticket_id={"no": 1},
            ticket_state="open",
            ticket_type=["x"],
            open="yes",
            created_at=-5,
            updated_at=True,
            admin_assignee_id="a" * 200,
        )
    }
    with ticket_server(answers) as srv:
        out = fetch_from(srv, jobs_frame(["5001"]))
    row = out.iloc[0]
    for column in (
        "ticket_id",
        "ticket_state",
        "ticket_type",
        "ticket_open",
        "ticket_created_at",
        "ticket_updated_at",
        "admin_assignee_id",
    ):
        assert pd.isna(row[column]), column
    assert row["team_assignee_id"] == "34" and pd.isna(row["ticket_error_code"])


@pytest.mark.parametrize(
    "resource_id", ["../me", "5001/../../me", "a/b", "..", "%2e%2e", "50 01", "5001?x=1", ""]
)
def test_a_resource_id_that_is_not_a_plain_id_is_never_requested(resource_id):
    with ticket_server({}) as srv:
        out = fetch_from(srv, jobs_frame([resource_id, "5002"]))
        assert srv.paths == [TICKET_PATH + "5002"]
    row = out.iloc[0]
    assert row["ticket_error_code"] == "invalid_response"
    assert pd.isna(row["ticket_http_status"]) and pd.isna(row["ticket_id"])
    assert out.iloc[1]["ticket_id"] == "7"


def test_a_401_is_an_authentication_error_with_the_tickets_read_so_far():
    answers = {"5002": error_answer(401, "unauthorized", "Access Token Invalid")}
    with ticket_server(answers) as srv:
        with pytest.raises(ij.AuthenticationError) as caught:
            fetch_from(srv, jobs_frame(["5001", "5002", "5003"]), max_workers=1)
        assert ticket_requests(srv, "5002") == 1
    df = caught.value.df
    assert isinstance(df, pd.DataFrame)
    assert "5001" in df["resource_id"].tolist()
    if "ticket_id" in df.columns:  # .df as the input rows with the tickets read so far
        assert df["job_id"].tolist() == ["1001", "1002", "1003"]
        assert df.set_index("resource_id").loc["5001", "ticket_id"] == "7"
