"""The sandbox enqueues and serves tickets as Intercom's API 2.15 does, and shows tests them.

``POST /tickets/enqueue`` (checked bodies, jobs that later succeed with a ticket or fail),
``GET /tickets/{ticket_id}``, the enqueue faults (``drop_after``: carried out, not answered)
and the introspection a test of "never create a ticket twice" needs. Every test talks to a
real server over loopback sockets; bodies are checked against the OpenAPI excerpt in
``tests/openapi/intercom-tickets-openapi-2.15.yaml``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import intercom
import jsonschema
import pytest
import requests
import yaml
from intercom.core.api_error import ApiError

from intercom_jobs_nb.sandbox import ENQUEUE_FAULTS, FAULTS, Sandbox

TICKETS_OPENAPI_PATH = (
    Path(__file__).resolve().parent / "openapi" / "intercom-tickets-openapi-2.15.yaml"
)
CONTACT = {"id": "6762f2d81bb69f9f2193bc54"}
VALID = {"ticket_type_id": "88", "contacts": [CONTACT]}


# -- helpers and fixtures ----------------------------------------------------------------------


def openapi_to_json_schema(node):
    """Turn an OpenAPI 3.0 schema into JSON Schema: ``nullable: true`` becomes a null type."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: openapi_to_json_schema(value)
        for key, value in node.items()
        if key not in ("nullable", "example", "x-tags")
    }
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


@pytest.fixture(scope="session")
def openapi():
    return yaml.safe_load(TICKETS_OPENAPI_PATH.read_text())


def schema_with_components(openapi, schema):
    """``schema`` as JSON Schema, its ``$ref``s into the excerpt's components resolvable."""
    components = {"schemas": openapi_to_json_schema(openapi["components"]["schemas"])}
    return {**openapi_to_json_schema(schema), "components": components}


@pytest.fixture(scope="session")
def jobs_schema(openapi):
    return schema_with_components(openapi, {"$ref": "#/components/schemas/jobs"})


@pytest.fixture(scope="session")
def ticket_schema(openapi):
    return schema_with_components(openapi, {"$ref": "#/components/schemas/ticket"})


@pytest.fixture(scope="session")
def error_schema(openapi):
    return schema_with_components(openapi, {"$ref": "#/components/schemas/error"})


@pytest.fixture(scope="session")
def enqueue_operation(openapi):
    return openapi["paths"]["/tickets/enqueue"]["post"]


@pytest.fixture(scope="session")
def request_schema(openapi, enqueue_operation):
    content = enqueue_operation["requestBody"]["content"]["application/json"]
    return schema_with_components(openapi, content["schema"])


@pytest.fixture(scope="session")
def spec_example_body(enqueue_operation):
    content = enqueue_operation["requestBody"]["content"]["application/json"]
    return content["examples"]["successful_response"]["value"]


def assert_matches(instance, schema):
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(instance)


def matches(instance, schema):
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


@pytest.fixture
def make_sandbox():
    """Start sandboxes with the given options (no jobs unless asked); all stop at the end."""
    started = []

    def make(**options):
        options.setdefault("jobs", 0)
        sb = Sandbox(**options).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(make_sandbox):
    """Enqueued jobs succeed at once; a generous rate limit."""
    return make_sandbox(enqueue_pending_seconds=(0.0, 0.0))


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def auth(sb):
    return {"Authorization": f"Bearer {sb.token}"}


def enqueue(session, sb, body=None, **kwargs):
    return session.post(
        f"{sb.base_url}/tickets/enqueue",
        headers=auth(sb),
        json=VALID if body is None else body,
        **kwargs,
    )


def ticket_body(title, key=None, **attributes):
    if key is not None:
        attributes["idempotency_key"] = key
    return {**VALID, "ticket_attributes": {"_default_title_": title, **attributes}}


def get_job(session, sb, job_id):
    return session.get(f"{sb.base_url}/jobs/status/{job_id}", headers=auth(sb))


def get_ticket(session, sb, ticket_id):
    return session.get(f"{sb.base_url}/tickets/{ticket_id}", headers=auth(sb))


def ticket_of(session, sb, body):
    """Enqueue ``body`` into a sandbox whose jobs succeed at once; the ticket's body."""
    job = enqueue(session, sb, body).json()
    resource_id = get_job(session, sb, job["id"]).json()["resource_id"]
    return get_ticket(session, sb, resource_id).json()


def error_code(response):
    return response.json()["errors"][0]["code"]


def error_message(response):
    return response.json()["errors"][0]["message"]


def port_of(sb):
    return int(sb.base_url.rsplit(":", 1)[1])


def leave_room_in_window(window, room=0.5):
    """Sleep past the next window boundary if it is near, so a short burst fits in one window."""
    now = time.time()
    left = (int(now // window) + 1) * window - now
    if left < room:
        time.sleep(left + 0.02)


# -- POST /tickets/enqueue: the 200 answer ----------------------------------------------------


def test_enqueue_of_the_spec_example_answers_a_pending_job(
    make_sandbox, session, spec_example_body, jobs_schema
):
    sb = make_sandbox()
    response = enqueue(session, sb, spec_example_body)  # its ticket_type_id is the number 88
    assert response.status_code == 200
    body = response.json()
    assert_matches(body, jobs_schema)
    assert body == {
        "type": "job",
        "id": "1001",
        "url": f"{sb.base_url}/jobs/status/1001",
        "status": "pending",
        "resource_type": "ticket",
        "resource_id": None,
        "resource_url": None,
    }


def test_enqueue_answers_pending_even_when_the_job_is_final_at_once(sandbox, session):
    job = enqueue(session, sandbox).json()
    assert job["status"] == "pending"
    assert get_job(session, sandbox, job["id"]).json()["status"] == "success"


def test_enqueued_job_succeeds_and_names_its_ticket(sandbox, session, jobs_schema):
    job_id = enqueue(session, sandbox).json()["id"]
    job = get_job(session, sandbox, job_id).json()
    assert_matches(job, jobs_schema)
    assert job["status"] == "success" and job["resource_type"] == "ticket"
    assert job["resource_id"] == str(int(job_id) + 4000)
    assert job["resource_url"] == f"{sandbox.base_url}/tickets/{job['resource_id']}"
    ticket = session.get(job["resource_url"], headers=auth(sandbox)).json()
    assert ticket["type"] == "ticket" and ticket["id"] == job["resource_id"]


def test_enqueued_job_stays_pending_for_its_pending_time(make_sandbox, session):
    sb = make_sandbox(enqueue_pending_seconds=(0.3, 0.3))
    job_id = enqueue(session, sb).json()["id"]
    assert get_job(session, sb, job_id).json()["status"] == "pending"
    time.sleep(0.4)
    assert get_job(session, sb, job_id).json()["status"] == "success"


def test_enqueued_jobs_are_numbered_after_the_jobs_made_at_construction(make_sandbox, session):
    sb = make_sandbox(jobs=3)
    assert enqueue(session, sb).json()["id"] == "1004"


def test_finish_all_finishes_enqueued_jobs(make_sandbox, session):
    sb = make_sandbox(enqueue_pending_seconds=(1e9, 1e9))
    job_id = enqueue(session, sb).json()["id"]
    assert sb.tickets == []
    sb.finish_all()
    assert get_job(session, sb, job_id).json()["status"] == "success"
    assert len(sb.tickets) == 1


def test_enqueue_failed_share_fails_jobs_and_creates_no_ticket(make_sandbox, session):
    sb = make_sandbox(enqueue_pending_seconds=(0.0, 0.0), enqueue_failed_share=1.0)
    job = get_job(session, sb, enqueue(session, sb).json()["id"]).json()
    assert job["status"] == "failed" and job["resource_id"] is None
    assert job["resource_url"] is None
    assert get_ticket(session, sb, str(int(job["id"]) + 4000)).status_code == 404
    assert sb.tickets == [] and sb.enqueued == 1


def test_enqueue_outcomes_follow_the_seed(make_sandbox, session):
    def outcomes(seed):
        sb = make_sandbox(seed=seed, enqueue_pending_seconds=(0, 0), enqueue_failed_share=0.5)
        jobs = [enqueue(session, sb).json()["id"] for _ in range(40)]
        return [get_job(session, sb, job_id).json()["status"] for job_id in jobs]

    first = outcomes(4)
    assert first == outcomes(4) and first != outcomes(5)
    assert set(first) == {"success", "failed"}


# -- POST /tickets/enqueue: checking the body -------------------------------------------------

INVALID_BODIES = {
    "not-an-object": ([VALID], "Request body isn't an object"),
    "no-ticket-type": ({"contacts": [CONTACT]}, "ticket_type_id is required"),
    "ticket-type-not-a-string": (
        {**VALID, "ticket_type_id": ["88"]},
        "ticket_type_id isn't a string",
    ),
    "ticket-type-a-boolean": ({**VALID, "ticket_type_id": True}, "ticket_type_id isn't a string"),
    "no-contacts": ({"ticket_type_id": "88"}, "contacts is required"),
    "contacts-not-an-array": ({**VALID, "contacts": CONTACT}, "contacts isn't an array"),
    "contacts-empty": ({**VALID, "contacts": []}, "contacts can't be empty"),
    "contact-not-an-object": ({**VALID, "contacts": ["6762f2"]}, "contacts[0] isn't an object"),
    "contact-without-identifier": (
        {**VALID, "contacts": [{"name": "Ada"}]},
        "contacts[0] needs an id, external_id or email",
    ),
    "contact-id-not-a-string": (
        {**VALID, "contacts": [{"id": 42}]},
        "contacts[0].id isn't a non-empty string",
    ),
    "contact-email-empty": (
        {**VALID, "contacts": [{"email": ""}]},
        "contacts[0].email isn't a non-empty string",
    ),
    "attributes-not-an-object": (
        {**VALID, "ticket_attributes": ["title"]},
        "ticket_attributes isn't an object",
    ),
    "title-not-a-string": (
        {**VALID, "ticket_attributes": {"_default_title_": 7}},
        "ticket_attributes._default_title_ isn't a string",
    ),
    "description-not-a-string": (
        {**VALID, "ticket_attributes": {"_default_description_": ["x"]}},
        "ticket_attributes._default_description_ isn't a string",
    ),
    "attribute-an-object": (
        {**VALID, "ticket_attributes": {"priority": {"id": "high"}}},
        "ticket_attributes.priority isn't a string, number, boolean or array",
    ),
    "company-id-not-a-string": ({**VALID, "company_id": 5}, "company_id isn't a string"),
    "conversation-not-a-string": (
        {**VALID, "conversation_to_link_id": 5},
        "conversation_to_link_id isn't a string",
    ),
    "created-at-not-an-integer": (
        {**VALID, "created_at": "2024-01-01"},
        "created_at isn't an integer",
    ),
    "created-at-a-float": ({**VALID, "created_at": 1.5}, "created_at isn't an integer"),
    "skip-notifications-not-a-boolean": (
        {**VALID, "skip_notifications": "yes"},
        "skip_notifications isn't a boolean",
    ),
    "assignment-not-an-object": ({**VALID, "assignment": "123"}, "assignment isn't an object"),
    "assignee-not-a-string": (
        {**VALID, "assignment": {"admin_assignee_id": 123}},
        "assignment.admin_assignee_id isn't a string",
    ),
}


@pytest.mark.parametrize(("body", "message"), INVALID_BODIES.values(), ids=INVALID_BODIES)
def test_invalid_enqueue_body_is_400_parameter_invalid_and_creates_no_job(
    sandbox, session, error_schema, body, message
):
    response = enqueue(session, sandbox, body)
    assert response.status_code == 400
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [{"code": "parameter_invalid", "message": message}]
    assert response.json()["request_id"] == response.headers["X-Request-Id"]
    assert sandbox.enqueued == 0
    assert get_job(session, sandbox, "1001").status_code == 404


#: Refused, though the schema allows them: the spec's prose (one contact, which must name
#: someone), or the string data_type of the default title and description attributes.
STRICTER_THAN_SCHEMA = {
    "contacts-empty",
    "contact-email-empty",
    "title-not-a-string",
    "description-not-a-string",
}


@pytest.mark.parametrize(
    "name", [name for name in INVALID_BODIES if name not in STRICTER_THAN_SCHEMA]
)
def test_refused_bodies_break_the_request_schema(request_schema, name):
    assert not matches(INVALID_BODIES[name][0], request_schema)


def test_refusals_stricter_than_the_schema_are_only_the_listed_ones(request_schema):
    stricter = {name for name, (body, _) in INVALID_BODIES.items() if matches(body, request_schema)}
    assert stricter == STRICTER_THAN_SCHEMA


def test_enqueue_body_that_is_not_json_is_400(sandbox, session):
    response = session.post(
        f"{sandbox.base_url}/tickets/enqueue", headers=auth(sandbox), data=b'{"ticket_type_id":'
    )
    assert response.status_code == 400 and error_code(response) == "parameter_invalid"
    assert sandbox.enqueued == 0


def test_enqueue_body_with_nan_is_not_json(sandbox, session):
    data = b'{"ticket_type_id": "88", "contacts": [{"id": "a"}], "created_at": NaN}'
    response = session.post(f"{sandbox.base_url}/tickets/enqueue", headers=auth(sandbox), data=data)
    assert response.status_code == 400 and error_message(response) == (
        "Request body is not valid JSON"
    )


def test_unknown_ticket_type_is_400_and_creates_no_job(sandbox, session, error_schema):
    response = enqueue(session, sandbox, {**VALID, "ticket_type_id": "1234"})
    assert response.status_code == 400
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [
        {"code": "parameter_invalid", "message": "Ticket type not found"}
    ]
    assert sandbox.enqueued == 0


def test_more_than_one_contact_is_400(sandbox, session):
    response = enqueue(session, sandbox, {**VALID, "contacts": [CONTACT, {"email": "a@b.c"}]})
    assert response.status_code == 400
    assert error_message(response) == "Only one contact is allowed"


def test_ticket_types_configure_the_known_types(make_sandbox, session):
    sb = make_sandbox(
        ticket_types={"1234": "Bug report", "77": "Refund"}, enqueue_pending_seconds=(0, 0)
    )
    assert sb.ticket_types == {"1234": "Bug report", "77": "Refund"}
    assert enqueue(session, sb).status_code == 400  # the default type 88 is not one of them
    ticket = ticket_of(session, sb, {**VALID, "ticket_type_id": "77"})
    assert (ticket["ticket_type"]["id"], ticket["ticket_type"]["name"]) == ("77", "Refund")


def test_default_ticket_types_are_one_type(make_sandbox):
    assert make_sandbox().ticket_types == {"88": "Bug report"}


def test_valid_bodies_match_the_request_schema_and_are_accepted(sandbox, session, request_schema):
    bodies = [
        VALID,
        {**VALID, "contacts": [{"external_id": "ext-1"}]},
        {**VALID, "contacts": [{"email": "ada@example.com"}]},
        {
            **VALID,
            "ticket_attributes": {
                "_default_title_": "Printer on fire",
                "_default_description_": None,
                "count": 3,
                "ratio": 0.5,
                "urgent": True,
                "tags": ["a", "b"],
            },
            "company_id": "5f4d3c1c",
            "conversation_to_link_id": "1234",
            "created_at": 1590000000,
            "skip_notifications": True,
            "assignment": {"admin_assignee_id": "123", "team_assignee_id": "8"},
        },
    ]
    for body in bodies:
        assert_matches(body, request_schema)
        assert enqueue(session, sandbox, body).status_code == 200
    assert sandbox.enqueued == len(bodies)


def test_enqueue_takes_null_optional_fields_as_absent(sandbox, session):
    # The official SDK sends null for an optional argument given as None.
    body = {
        **VALID,
        "ticket_attributes": None,
        "company_id": None,
        "conversation_to_link_id": None,
        "created_at": None,
        "skip_notifications": None,
        "assignment": None,
    }
    assert enqueue(session, sandbox, body).status_code == 200


def test_enqueue_ignores_unknown_fields(sandbox, session):
    assert enqueue(session, sandbox, {**VALID, "priority": "high"}).status_code == 200


def test_enqueue_counts_against_the_rate_limit(make_sandbox, session):
    sb = make_sandbox(rate_limit=2, window=10)
    leave_room_in_window(10)
    first = enqueue(session, sb)
    assert first.headers["X-RateLimit-Remaining"] == "1"
    enqueue(session, sb, {})  # a refused body costs budget too
    rejected = enqueue(session, sb)
    assert rejected.status_code == 429 and error_code(rejected) == "rate_limit_exceeded"
    assert sb.enqueued == 1


def test_enqueue_without_a_token_is_401_and_creates_no_job(sandbox, session, error_schema):
    response = session.post(f"{sandbox.base_url}/tickets/enqueue", json=VALID)
    assert response.status_code == 401
    assert_matches(response.json(), error_schema)
    assert sandbox.enqueued == 0


def test_get_on_the_enqueue_path_is_405(sandbox, session):
    response = session.get(f"{sandbox.base_url}/tickets/enqueue", headers=auth(sandbox))
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_concurrent_enqueues_each_create_one_job_and_one_ticket(sandbox):
    local = threading.local()

    def post(number):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return enqueue(local.session, sandbox, ticket_body(f"t{number}")).json()["id"]

    with ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(post, range(200)))
    assert len(set(job_ids)) == 200 and sandbox.enqueued == 200
    assert len({t["id"] for t in sandbox.tickets}) == 200
    assert set(sandbox.count_tickets("title").values()) == {1}


# -- GET /tickets/{ticket_id} ------------------------------------------------------------------


def test_ticket_body_matches_the_openapi_ticket_schema(sandbox, session, ticket_schema, openapi):
    ticket = ticket_of(
        session,
        sandbox,
        {
            **VALID,
            "ticket_attributes": {"_default_title_": "T", "tags": ["x"], "n": 1.5, "ok": False},
        },
    )
    assert_matches(ticket, ticket_schema)
    schemas = openapi["components"]["schemas"]
    assert set(ticket) <= set(schemas["ticket"]["properties"])
    assert set(ticket["ticket_state"]) <= set(schemas["ticket_state"]["properties"])
    assert set(ticket["contacts"]["contacts"][0]) <= set(schemas["contact_reference"]["properties"])


def test_ticket_has_the_shape_of_the_spec_example(sandbox, session, openapi):
    example = openapi["paths"]["/tickets/{ticket_id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["Ticket found"]["value"]
    ticket = ticket_of(session, sandbox, VALID)
    assert set(ticket) == set(example)
    assert set(ticket["ticket_type"]) == set(example["ticket_type"])
    assert set(ticket["ticket_state"]) == set(example["ticket_state"])
    attribute = ticket["ticket_type"]["ticket_type_attributes"]["data"][0]
    assert set(attribute) == set(example["ticket_type"]["ticket_type_attributes"]["data"][0])


def test_ticket_carries_the_enqueued_attributes(sandbox, session):
    attributes = {
        "_default_title_": "Printer on fire",
        "_default_description_": "Smoke everywhere",
        "idempotency_key": "k-1",
        "tags": ["a"],
    }
    ticket = ticket_of(session, sandbox, {**VALID, "ticket_attributes": attributes})
    assert ticket["ticket_attributes"] == attributes


def test_ticket_title_and_description_default_to_null(sandbox, session):
    ticket = ticket_of(session, sandbox, VALID)
    assert ticket["ticket_attributes"] == {
        "_default_title_": None,
        "_default_description_": None,
    }


def test_ticket_names_its_type_state_and_times(sandbox, session):
    before = int(time.time())
    ticket = ticket_of(session, sandbox, VALID)
    assert ticket["type"] == "ticket" and ticket["ticket_id"] == "1"
    assert ticket["ticket_type"]["type"] == "ticket_type"
    assert (ticket["ticket_type"]["id"], ticket["ticket_type"]["name"]) == ("88", "Bug report")
    assert ticket["ticket_state"] == {
        "type": "ticket_state",
        "id": "1",
        "category": "submitted",
        "internal_label": "Submitted",
        "external_label": "Submitted",
    }
    assert ticket["open"] is True
    assert before - 1 <= ticket["created_at"] <= ticket["updated_at"]


def test_ticket_keeps_created_at_from_the_body(sandbox, session):
    ticket = ticket_of(session, sandbox, {**VALID, "created_at": 1590000000})
    assert ticket["created_at"] == 1590000000 and ticket["updated_at"] >= 1590000000


def test_ticket_names_its_contact_by_the_given_id(sandbox, session):
    ticket = ticket_of(session, sandbox, VALID)
    assert ticket["contacts"] == {
        "type": "contact.list",
        "contacts": [{"type": "contact", "id": CONTACT["id"], "external_id": None}],
    }


def test_contact_by_email_or_external_id_gets_a_stable_made_up_id(sandbox, session):
    def contact(reference):
        ticket = ticket_of(session, sandbox, {**VALID, "contacts": [reference]})
        return ticket["contacts"]["contacts"][0]

    by_external = contact({"external_id": "ext-1"})
    assert by_external["external_id"] == "ext-1" and len(by_external["id"]) == 24
    assert contact({"external_id": "ext-1"}) == by_external
    by_email = contact({"email": "ada@example.com"})
    assert by_email["external_id"] is None and by_email["id"] != by_external["id"]


def test_ticket_assignees_come_from_the_assignment(sandbox, session):
    unassigned = ticket_of(session, sandbox, VALID)
    assert (unassigned["admin_assignee_id"], unassigned["team_assignee_id"]) == ("0", "0")
    body = {**VALID, "assignment": {"admin_assignee_id": "123", "team_assignee_id": "8"}}
    assigned = ticket_of(session, sandbox, body)
    assert (assigned["admin_assignee_id"], assigned["team_assignee_id"]) == ("123", "8")


def test_human_ticket_ids_count_up_in_enqueue_order(sandbox, session):
    numbers = [ticket_of(session, sandbox, VALID)["ticket_id"] for _ in range(3)]
    assert numbers == ["1", "2", "3"]


def test_unknown_ticket_is_404_ticket_not_found(sandbox, session, error_schema):
    response = get_ticket(session, sandbox, "424242")
    assert response.status_code == 404
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [
        {"code": "ticket_not_found", "message": "Ticket not found"}
    ]


def test_ticket_of_a_pending_job_is_404_until_the_job_succeeds(make_sandbox, session):
    sb = make_sandbox(enqueue_pending_seconds=(1e9, 1e9))
    ticket_id = str(int(enqueue(session, sb).json()["id"]) + 4000)
    assert error_code(get_ticket(session, sb, ticket_id)) == "ticket_not_found"
    sb.finish_all()
    assert get_ticket(session, sb, ticket_id).status_code == 200


def test_ticket_of_a_job_made_at_construction_is_404(make_sandbox, session):
    sb = make_sandbox(jobs=1, failed_share=0.0, pending_share=0.0)
    resource_id = get_job(session, sb, "1001").json()["resource_id"]
    assert get_ticket(session, sb, resource_id).status_code == 404


def test_percent_encoded_ticket_id_names_the_same_ticket(sandbox, session):
    ticket_id = ticket_of(session, sandbox, VALID)["id"]
    encoded = "".join(f"%{ord(c):02X}" for c in ticket_id)
    conn = http.client.HTTPConnection("127.0.0.1", port_of(sandbox), timeout=10)
    try:
        conn.request("GET", f"/tickets/{encoded}", headers=auth(sandbox))
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["id"] == ticket_id
    finally:
        conn.close()


def test_ticket_requests_count_against_the_rate_limit(make_sandbox, session):
    sb = make_sandbox(rate_limit=2, window=10)
    leave_room_in_window(10)
    assert get_ticket(session, sb, "5001").headers["X-RateLimit-Remaining"] == "1"
    get_ticket(session, sb, "5001")
    assert get_ticket(session, sb, "5001").status_code == 429


def test_ticket_without_a_token_is_401(sandbox, session, error_schema):
    response = session.get(f"{sandbox.base_url}/tickets/5001")
    assert response.status_code == 401
    assert_matches(response.json(), error_schema)


def test_ticket_with_another_method_is_405(sandbox, session):
    response = session.put(f"{sandbox.base_url}/tickets/5001", headers=auth(sandbox), json={})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_ticket_refuses_an_invalid_intercom_version(sandbox, session):
    headers = {**auth(sandbox), "Intercom-Version": "9.9"}
    response = session.get(f"{sandbox.base_url}/tickets/5001", headers=headers)
    assert response.status_code == 400 and error_code(response) == "intercom_version_invalid"


# -- enqueue faults ----------------------------------------------------------------------------


def test_enqueue_faults_are_the_job_faults_then_drop_after():
    assert (*FAULTS, "drop_after") == ENQUEUE_FAULTS
    assert "drop_after" not in FAULTS


def test_drop_after_fault_creates_the_ticket_but_sends_no_answer(sandbox, session):
    sandbox.inject_enqueue("drop_after")
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox, ticket_body("only once"))
    assert sandbox.enqueued == 1
    assert [t["title"] for t in sandbox.tickets] == ["only once"]
    assert get_job(session, sandbox, "1001").json()["resource_id"] == "5001"


def test_retry_after_drop_after_makes_a_duplicate_that_count_tickets_shows(sandbox, session):
    sandbox.inject_enqueue("drop_after")
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox, ticket_body("twice", key="k-1"))
    assert enqueue(session, sandbox, ticket_body("twice", key="k-1")).status_code == 200
    assert sandbox.count_tickets("idempotency_key") == {"k-1": 2}


def test_drop_after_fault_with_a_refused_body_creates_nothing(sandbox, session):
    sandbox.inject_enqueue("drop_after")
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox, {"contacts": [CONTACT]})
    assert sandbox.enqueued == 0 and sandbox.stats["faults"] == {"drop_after": 1}


def test_drop_fault_on_enqueue_creates_nothing(sandbox, session):
    sandbox.inject_enqueue("drop")
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox)
    assert sandbox.enqueued == 0 and sandbox.tickets == []


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("server_error", 500, "server_error"), ("service_unavailable", 503, "service_unavailable")],
)
def test_server_error_faults_on_enqueue_answer_5xx_before_creating_anything(
    sandbox, session, error_schema, fault, status, code
):
    sandbox.inject_enqueue(fault)
    response = enqueue(session, sandbox)
    assert response.status_code == status and error_code(response) == code
    assert_matches(response.json(), error_schema)
    assert sandbox.enqueued == 0 and sandbox.tickets == []


def test_html_fault_on_enqueue_answers_a_proxy_page_and_creates_nothing(sandbox, session):
    sandbox.inject_enqueue("html")
    response = enqueue(session, sandbox)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert sandbox.enqueued == 0


def test_rate_limit_fault_on_enqueue_is_a_429_that_costs_no_budget(make_sandbox, session):
    sb = make_sandbox(rate_limit=5, window=10)
    leave_room_in_window(10)
    sb.inject_enqueue("rate_limit")
    rejected = enqueue(session, sb)
    assert rejected.status_code == 429 and error_code(rejected) == "rate_limit_exceeded"
    assert rejected.headers["X-RateLimit-Remaining"] == "0" and sb.enqueued == 0
    assert enqueue(session, sb).headers["X-RateLimit-Remaining"] == "4"


def test_slow_fault_on_enqueue_creates_the_job_then_answers_late(make_sandbox, session):
    sb = make_sandbox(slow_seconds=0.2)
    sb.inject_enqueue("slow")
    started = time.monotonic()
    response = enqueue(session, sb)
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert sb.enqueued == 1


def test_slow_fault_on_enqueue_outlasts_a_short_client_timeout_yet_creates_the_job(
    make_sandbox, session
):
    sb = make_sandbox(slow_seconds=5.0)
    sb.inject_enqueue("slow")
    with pytest.raises(requests.Timeout):
        enqueue(session, sb, timeout=0.2)
    assert sb.enqueued == 1


def test_not_json_fault_on_enqueue_creates_the_job_and_spoils_the_answer(sandbox, session):
    sandbox.inject_enqueue("not_json")
    response = enqueue(session, sandbox)
    with pytest.raises(ValueError):
        json.loads(response.content)
    assert sandbox.enqueued == 1


def test_no_id_fault_on_enqueue_creates_the_job_and_answers_it_without_id(sandbox, session):
    sandbox.inject_enqueue("no_id")
    body = enqueue(session, sandbox).json()
    assert body["type"] == "job" and "id" not in body and sandbox.enqueued == 1


def test_injected_enqueue_faults_are_consumed_in_order_then_normal(sandbox, session):
    sandbox.inject_enqueue("server_error", "service_unavailable")
    codes = [enqueue(session, sandbox).status_code for _ in range(3)]
    assert codes == [500, 503, 200]


def test_enqueue_faults_do_not_touch_job_status_requests(sandbox, session):
    sandbox.inject_enqueue("server_error")
    job_id = enqueue(session, sandbox, ticket_body("x")).json().get("id")  # the 500
    assert job_id is None
    job_id = enqueue(session, sandbox).json()["id"]
    assert get_job(session, sandbox, job_id).status_code == 200


def test_job_faults_do_not_touch_enqueue_requests(sandbox, session):
    sandbox.inject("1001", "server_error")
    assert enqueue(session, sandbox).status_code == 200


def test_unknown_enqueue_fault_names_are_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.inject_enqueue("gremlins")


def test_drop_after_cannot_be_injected_for_a_job_status_request(sandbox):
    with pytest.raises(ValueError):
        sandbox.inject("1001", "drop_after")


def test_random_drop_after_follows_its_share_and_the_seed(make_sandbox, session):
    def run(seed):
        sb = make_sandbox(seed=seed, enqueue_pending_seconds=(0, 0), faults={"drop_after": 0.3})
        dropped = []
        for _ in range(60):
            try:
                enqueue(session, sb)
                dropped.append(False)
            except requests.ConnectionError:
                dropped.append(True)
        assert sb.enqueued == 60 and len(sb.tickets) == 60  # every one was carried out
        return dropped

    first = run(3)
    assert first == run(3)
    assert 6 <= sum(first) <= 30


def test_random_drop_after_is_not_drawn_for_job_status_requests(make_sandbox, session):
    sb = make_sandbox(jobs=1, faults={"drop_after": 1.0})
    assert get_job(session, sb, "1001").status_code == 200


def test_random_server_errors_apply_to_enqueue_requests_too(make_sandbox, session):
    sb = make_sandbox(faults={"server_error": 1.0})
    assert enqueue(session, sb).status_code == 500 and sb.enqueued == 0


def test_enqueue_faults_are_counted_in_the_stats(sandbox, session):
    sandbox.inject_enqueue("drop_after", "server_error")
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox)
    enqueue(session, sandbox)
    stats = sandbox.stats
    assert stats["faults"] == {"drop_after": 1, "server_error": 1}
    assert stats["by_status"] == {500: 1}  # a dropped answer has no status


def test_fault_shares_over_one_for_enqueue_requests_are_refused():
    with pytest.raises(ValueError):
        Sandbox(jobs=0, faults={"server_error": 0.6, "drop_after": 0.6})


# -- introspection -----------------------------------------------------------------------------


def test_tickets_lists_each_ticket_with_its_title_attributes_contact_and_body(sandbox, session):
    body = {
        **VALID,
        "contacts": [{"email": "ada@example.com"}],
        "ticket_attributes": {"_default_title_": "T1", "_default_description_": "D1", "k": "v"},
    }
    enqueue(session, sandbox, body)
    assert sandbox.tickets == [
        {
            "id": "5001",
            "ticket_id": "1",
            "job_id": "1001",
            "ticket_type_id": "88",
            "title": "T1",
            "description": "D1",
            "attributes": {"_default_title_": "T1", "_default_description_": "D1", "k": "v"},
            "contact": {"email": "ada@example.com"},
            "created_at": sandbox.tickets[0]["created_at"],
            "body": body,
        }
    ]


def test_tickets_records_the_enqueue_body_as_sent(sandbox, session, spec_example_body):
    enqueue(session, sandbox, spec_example_body)
    recorded = sandbox.tickets[0]
    assert recorded["body"] == spec_example_body  # ticket_type_id still the number 88
    assert recorded["ticket_type_id"] == "88"


def test_tickets_is_a_snapshot_safe_to_change(sandbox, session):
    enqueue(session, sandbox, ticket_body("T"))
    snapshot = sandbox.tickets
    snapshot[0]["attributes"]["_default_title_"] = "changed"
    snapshot[0]["body"]["contacts"].clear()
    snapshot.clear()
    assert sandbox.tickets[0]["title"] == "T"
    assert sandbox.tickets[0]["body"] == ticket_body("T")


def test_tickets_leaves_out_pending_and_failed_jobs(make_sandbox, session):
    sb = make_sandbox(enqueue_pending_seconds=(1e9, 1e9))
    enqueue(session, sb)
    assert sb.tickets == [] and sb.enqueued == 1


def test_count_tickets_by_title_reveals_duplicates(sandbox, session):
    for title in ("a", "b", "a", "c", "a"):
        enqueue(session, sandbox, ticket_body(title))
    assert sandbox.count_tickets(by="title") == {"a": 3, "b": 1, "c": 1}
    assert sandbox.count_tickets() == sandbox.count_tickets(by="title")


def test_count_tickets_by_an_attribute_key(sandbox, session):
    for key in ("k1", "k2", "k1"):
        enqueue(session, sandbox, ticket_body("same", key=key))
    enqueue(session, sandbox, VALID)
    assert sandbox.count_tickets(by="idempotency_key") == {"k1": 2, "k2": 1, None: 1}


def test_count_tickets_by_a_list_attribute_counts_its_json_text(sandbox, session):
    enqueue(session, sandbox, ticket_body("x", tags=["a", "b"]))
    assert sandbox.count_tickets(by="tags") == {'["a", "b"]': 1}


def test_count_tickets_by_a_function(sandbox, session):
    enqueue(session, sandbox, {**VALID, "contacts": [{"email": "a@x.org"}]})
    enqueue(session, sandbox, {**VALID, "contacts": [{"email": "a@x.org"}]})
    assert sandbox.count_tickets(by=lambda t: t["contact"].get("email")) == {"a@x.org": 2}


def test_count_tickets_by_description(sandbox, session):
    enqueue(session, sandbox, ticket_body("x", _default_description_="d"))
    assert sandbox.count_tickets(by="description") == {"d": 1}


def test_enqueued_counts_requests_carried_out(sandbox, session):
    sandbox.inject_enqueue("server_error", "drop_after")
    enqueue(session, sandbox)  # 500: not carried out
    with pytest.raises(requests.ConnectionError):
        enqueue(session, sandbox)  # carried out, not answered
    enqueue(session, sandbox, {})  # refused
    enqueue(session, sandbox)
    assert sandbox.enqueued == 2


def test_enqueued_is_not_cleared_by_reset_stats(sandbox, session):
    enqueue(session, sandbox)
    sandbox.reset_stats()
    assert sandbox.enqueued == 1


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"enqueue_failed_share": 1.5},
        {"enqueue_failed_share": -0.1},
        {"enqueue_pending_seconds": (2.0, 1.0)},
        {"enqueue_pending_seconds": (-1.0, 1.0)},
        {"ticket_types": {"bug": "Bug"}},
        {"ticket_types": {"12": ""}},
    ],
    ids=["share-over-1", "share-negative", "low-over-high", "negative", "id-not-digits", "no-name"],
)
def test_bad_ticket_options_are_refused(options):
    with pytest.raises(ValueError):
        Sandbox(jobs=0, **options)


def test_ticket_types_are_kept_as_a_copy(make_sandbox):
    types = {"12": "Bug"}
    sb = make_sandbox(ticket_types=types)
    types["13"] = "Other"
    assert sb.ticket_types == {"12": "Bug"}


# -- the official SDK --------------------------------------------------------------------------


@pytest.fixture
def client(sandbox):
    return intercom.Intercom(token=sandbox.token, base_url=sandbox.base_url)


def test_official_sdk_enqueues_follows_the_job_and_reads_the_ticket(sandbox, client):
    job = client.tickets.enqueue_create_ticket(
        ticket_type_id="88",
        contacts=[{"id": CONTACT["id"]}],
        request_options={
            "additional_body_parameters": {"ticket_attributes": {"_default_title_": "From SDK"}}
        },
    )
    assert job.status == "pending" and job.resource_id is None
    done = client.jobs.status(job_id=job.id)
    assert done.status == "success" and done.resource_type == "ticket"
    ticket = client.tickets.get(ticket_id=done.resource_id)
    assert ticket.id == done.resource_id and ticket.type == "ticket"
    assert ticket.ticket_attributes["_default_title_"] == "From SDK"
    assert ticket.ticket_type.name == "Bug report"
    assert ticket.ticket_state.category == "submitted"
    assert ticket.contacts.contacts[0].id == CONTACT["id"]
    assert sandbox.count_tickets() == {"From SDK": 1}


def test_official_sdk_null_arguments_are_accepted(client):
    job = client.tickets.enqueue_create_ticket(
        ticket_type_id="88", contacts=[{"email": "a@b.c"}], company_id=None, created_at=None
    )
    assert job.status == "pending"


def test_official_sdk_raises_bad_request_for_an_unknown_ticket_type(sandbox, client):
    with pytest.raises(intercom.BadRequestError) as caught:
        client.tickets.enqueue_create_ticket(ticket_type_id="1234", contacts=[CONTACT])
    assert caught.value.body["errors"][0]["code"] == "parameter_invalid"
    assert sandbox.enqueued == 0


def test_official_sdk_raises_a_404_api_error_for_an_unknown_ticket(client):
    with pytest.raises(ApiError) as caught:
        client.tickets.get(ticket_id="424242")
    assert caught.value.status_code == 404
    assert caught.value.body["errors"][0]["code"] == "ticket_not_found"
