"""The sandbox answers like Intercom's job-status API 2.15, and does what tests ask of it.

Every test talks to a real server over loopback sockets, except the unit tests of the
rate-limit window (on a fake clock). The OpenAPI excerpts the bodies are checked against are
in ``tests/openapi/``.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from intercom_jobs_nb.sandbox import (
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE,
    FAULTS,
    INTERCOM_VERSIONS,
    Sandbox,
)
from intercom_jobs_nb.sandbox._faults import TABLE as FAULT_TABLE
from intercom_jobs_nb.sandbox._ratelimit import FixedWindow

OPENAPI_DIR = Path(__file__).resolve().parent / "openapi"
OPENAPI_PATH = OPENAPI_DIR / "intercom-jobs-openapi-2.15.yaml"
TICKETS_OPENAPI_PATH = OPENAPI_DIR / "intercom-tickets-openapi-2.15.yaml"
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


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


def component_schema(openapi, name):
    """The JSON Schema of a component, its ``$ref``s resolvable inside it."""
    schemas = openapi_to_json_schema(openapi["components"]["schemas"])
    return {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}


@pytest.fixture(scope="session")
def openapi():
    return yaml.safe_load(OPENAPI_PATH.read_text())


@pytest.fixture(scope="session")
def tickets_openapi():
    return yaml.safe_load(TICKETS_OPENAPI_PATH.read_text())


@pytest.fixture(scope="session")
def admin_schema(tickets_openapi):
    return component_schema(tickets_openapi, "admin_with_app")


@pytest.fixture(scope="session")
def jobs_schema(openapi):
    return openapi_to_json_schema(openapi["components"]["schemas"]["jobs"])


@pytest.fixture(scope="session")
def error_schema(openapi):
    return openapi_to_json_schema(openapi["components"]["schemas"]["error"])


def assert_matches(instance, schema):
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(instance)


@pytest.fixture
def make_sandbox():
    """Start sandboxes with the given options; all are stopped at the end of the test."""
    started = []

    def make(**options):
        sb = Sandbox(**options).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(make_sandbox):
    """Ten jobs, all final and successful at once, a generous rate limit."""
    return make_sandbox(jobs=10, failed_share=0.0, pending_share=0.0)


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def auth(sb, **extra):
    return {"Authorization": f"Bearer {sb.token}", **extra}


def status_url(sb, job_id):
    return f"{sb.base_url}/jobs/status/{job_id}"


def get_job(session, sb, job_id, **kwargs):
    return session.get(status_url(sb, job_id), headers=auth(sb), **kwargs)


def error_code(response):
    return response.json()["errors"][0]["code"]


def port_of(sb):
    return int(sb.base_url.rsplit(":", 1)[1])


def raw_request(sb, method, path, headers=None):
    """One request on a fresh connection, the path sent as is (requests would re-quote it).

    Returns the status, the headers (a dict) and the body.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port_of(sb), timeout=10)
    try:
        conn.request(method, path, headers=auth(sb) if headers is None else headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_until(condition, timeout=30.0):
    """Poll ``condition`` until it holds; fail after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def get_me(session, sb, token=None):
    token = sb.token if token is None else token
    return session.get(f"{sb.base_url}/me", headers={"Authorization": f"Bearer {token}"})


# -- the 200 answer ------------------------------------------------------------------------------


def test_job_bodies_match_the_openapi_jobs_schema(make_sandbox, session, jobs_schema):
    sb = make_sandbox(jobs=30, seed=3, failed_share=0.3, pending_share=0.3)
    statuses = set()
    for job_id in sb.job_ids:
        body = get_job(session, sb, job_id).json()
        assert_matches(body, jobs_schema)
        assert set(body) <= set(jobs_schema["properties"])
        statuses.add(body["status"])
    assert statuses == {"pending", "success", "failed"}


def test_successful_job_names_its_ticket(sandbox, session):
    body = get_job(session, sandbox, "1001").json()
    assert body == {
        "type": "job",
        "id": "1001",
        "url": f"{sandbox.base_url}/jobs/status/1001",
        "status": "success",
        "resource_type": "ticket",
        "resource_id": "5001",
        "resource_url": f"{sandbox.base_url}/tickets/5001",
    }


def test_pending_and_failed_jobs_have_null_resource(make_sandbox, session):
    sb = make_sandbox(jobs=0)
    for status in ("pending", "failed"):
        body = get_job(session, sb, sb.add_job(status=status)).json()
        assert body["status"] == status
        assert body["resource_type"] == "ticket"
        assert body["resource_id"] is None and body["resource_url"] is None


def test_job_ids_are_numeric_strings_in_creation_order(make_sandbox):
    sb = make_sandbox(jobs=3)
    assert sb.job_ids == ["1001", "1002", "1003"]


def test_answers_carry_json_content_type_length_and_request_id(sandbox, session):
    for response in (get_job(session, sandbox, "1001"), get_job(session, sandbox, "999")):
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert int(response.headers["Content-Length"]) == len(response.content)
        uuid.UUID(response.headers["X-Request-Id"], version=4)


def test_error_request_id_matches_the_header(sandbox, session):
    response = get_job(session, sandbox, "999")
    assert response.json()["request_id"] == response.headers["X-Request-Id"]


def test_keep_alive_serves_many_requests_on_one_connection(sandbox):
    conn = http.client.HTTPConnection("127.0.0.1", port_of(sandbox))
    try:
        conn.request("GET", "/jobs/status/1001", headers=auth(sandbox))
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        conn.request("GET", "/jobs/status/1002", headers=auth(sandbox))
        second = conn.getresponse()
        assert json.loads(second.read())["id"] == "1002"
        assert first.version == 11 and conn.sock is sock
    finally:
        conn.close()


def test_outcomes_are_deterministic_from_the_seed(make_sandbox, session):
    def outcomes(seed):
        sb = make_sandbox(jobs=60, seed=seed, failed_share=0.4, pending_share=0.3)
        return [get_job(session, sb, job_id).json()["status"] for job_id in sb.job_ids]

    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)


def test_failed_share_sets_the_share_of_failed_jobs(make_sandbox, session):
    sb = make_sandbox(jobs=200, seed=1, failed_share=0.5, pending_share=0.0)
    failed = sum(get_job(session, sb, job_id).json()["status"] == "failed" for job_id in sb.job_ids)
    assert 70 <= failed <= 130


# -- errors --------------------------------------------------------------------------------------


def test_missing_token_is_401_without_rate_headers(sandbox, session, error_schema):
    response = session.get(status_url(sandbox, "1001"))
    assert response.status_code == 401
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [
        {"code": "unauthorized", "message": "Access Token Invalid"}
    ]
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_wrong_token_is_401_without_rate_headers(sandbox, session):
    response = session.get(status_url(sandbox, "1001"), headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_token_must_be_a_bearer_token(sandbox, session):
    response = session.get(status_url(sandbox, "1001"), headers={"Authorization": sandbox.token})
    assert response.status_code == 401


def test_token_defaults_to_a_readable_string_and_can_be_chosen(make_sandbox, session):
    assert make_sandbox(jobs=1).token == DEFAULT_TOKEN == "sandbox-token"
    sb = make_sandbox(jobs=1, token="secret-123")
    assert get_job(session, sb, "1001").status_code == 200


def test_unknown_job_is_404_job_not_found(sandbox, session, error_schema):
    response = get_job(session, sandbox, "999999")
    assert response.status_code == 404
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [{"code": "job_not_found", "message": "Job Not Found"}]


def test_unknown_path_is_404_not_found(sandbox, session, error_schema):
    response = session.get(f"{sandbox.base_url}/contacts", headers=auth(sandbox))
    assert response.status_code == 404
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [{"code": "not_found", "message": "Resource Not Found"}]


def test_wrong_method_is_405(sandbox, session, error_schema):
    response = session.delete(status_url(sandbox, "1001"), headers=auth(sandbox))
    assert response.status_code == 405
    assert_matches(response.json(), error_schema)
    assert response.headers["Allow"] == "GET"


def test_invalid_intercom_version_is_400(sandbox, session, error_schema):
    response = session.get(
        status_url(sandbox, "1001"), headers=auth(sandbox, **{"Intercom-Version": "3.0"})
    )
    assert response.status_code == 400
    assert_matches(response.json(), error_schema)
    assert error_code(response) == "intercom_version_invalid"


def test_every_openapi_version_is_accepted_and_recorded(sandbox, session, openapi):
    enum = openapi["components"]["schemas"]["intercom_version"]["enum"]
    # 2.15's enum, 2.16's addition, the Preview description's name, and its former name.
    assert set(INTERCOM_VERSIONS) == {*enum, "2.16", "Preview", "Unstable"}
    for version in INTERCOM_VERSIONS:
        headers = auth(sandbox, **{"Intercom-Version": version})
        assert session.get(status_url(sandbox, "1001"), headers=headers).status_code == 200
    assert sandbox.stats["versions"] == {version: 1 for version in INTERCOM_VERSIONS}


def test_version_2_16_is_accepted(sandbox, session):
    headers = auth(sandbox, **{"Intercom-Version": "2.16"})
    assert session.get(status_url(sandbox, "1001"), headers=headers).status_code == 200


def test_version_unstable_is_accepted(sandbox, session):
    headers = auth(sandbox, **{"Intercom-Version": "Unstable"})
    assert session.get(status_url(sandbox, "1001"), headers=headers).status_code == 200


# -- HTTP semantics ------------------------------------------------------------------------------

ALWAYS_DIFFERENT = {"Date", "X-Request-Id"}


def test_head_answers_like_get_without_a_body(make_sandbox):
    sb = make_sandbox(jobs=1, rate_limit=None, failed_share=0.0, pending_share=0.0)
    head_status, head_headers, head_body = raw_request(sb, "HEAD", "/jobs/status/1001")
    get_status, get_headers, get_body = raw_request(sb, "GET", "/jobs/status/1001")
    assert head_status == get_status == 200
    assert head_body == b"" and int(head_headers["Content-Length"]) == len(get_body) > 0

    def same(headers):
        return {k: v for k, v in headers.items() if k not in ALWAYS_DIFFERENT}

    assert same(head_headers) == same(get_headers)


def test_head_carries_the_rate_limit_headers_and_counts_against_the_budget(make_sandbox):
    sb = make_sandbox(jobs=1, rate_limit=5, window=10)
    leave_room_in_window(10)
    _, head_headers, _ = raw_request(sb, "HEAD", "/jobs/status/1001")
    _, get_headers, _ = raw_request(sb, "GET", "/jobs/status/1001")
    assert head_headers["X-RateLimit-Remaining"] == "4"
    assert get_headers["X-RateLimit-Remaining"] == "3"


def test_head_of_an_unknown_job_is_a_404_without_a_body(sandbox):
    status, headers, body = raw_request(sandbox, "HEAD", "/jobs/status/999999")
    _, _, get_body = raw_request(sandbox, "GET", "/jobs/status/999999")
    assert status == 404 and body == b""
    assert int(headers["Content-Length"]) == len(get_body)


def test_head_without_a_token_is_a_401_without_a_body(sandbox):
    status, headers, body = raw_request(sandbox, "HEAD", "/jobs/status/1001", headers={})
    assert status == 401 and body == b"" and int(headers["Content-Length"]) > 0


def test_head_sends_no_body_bytes_before_the_next_answer(sandbox):
    token = f"Bearer {sandbox.token}"
    pipelined = (
        f"HEAD /jobs/status/1001 HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n"
        f"GET /jobs/status/1002 HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port_of(sandbox)), timeout=10) as sock:
        sock.sendall(pipelined)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head_answer, rest = received.split(b"\r\n\r\n", 1)
    assert head_answer.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 200 ")  # the GET's answer follows the HEAD's head at once
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["id"] == "1002"


def test_percent_encoded_job_id_names_the_same_job(sandbox):
    status, _, body = raw_request(sandbox, "GET", "/jobs/status/%31%30%30%31")
    assert status == 200 and json.loads(body)["id"] == "1001"
    assert sandbox.stats["per_job"] == {"1001": 1}


def test_injected_faults_apply_to_the_percent_encoded_job_id(sandbox):
    sandbox.inject("1001", "server_error")
    assert raw_request(sandbox, "GET", "/jobs/status/100%31")[0] == 500


def test_percent_encoded_slash_in_a_job_id_names_no_job(sandbox, error_schema):
    status, _, body = raw_request(sandbox, "GET", "/jobs/status/10%2F01")
    assert status == 404
    assert_matches(json.loads(body), error_schema)
    assert json.loads(body)["errors"][0]["code"] == "not_found"


def test_percent_encoded_fixed_segments_name_the_same_route(sandbox):
    status, _, body = raw_request(sandbox, "GET", "/%6Aobs/status/1002")
    assert status == 200 and json.loads(body)["id"] == "1002"


# -- /me and workspaces --------------------------------------------------------------------------


def test_me_answers_an_admin_with_app_of_the_main_token_workspace(
    sandbox, session, admin_schema, tickets_openapi
):
    response = get_me(session, sandbox)
    assert response.status_code == 200
    body = response.json()
    assert_matches(body, admin_schema)
    schemas = tickets_openapi["components"]["schemas"]
    assert set(body) <= set(schemas["admin_with_app"]["properties"])
    assert set(body["app"]) <= set(schemas["app"]["properties"])
    assert body["type"] == "admin" and body["app"]["type"] == "app"
    assert body["app"]["id_code"] == sandbox.workspace == DEFAULT_WORKSPACE == "sandbox"


def test_workspace_names_the_main_token_app(make_sandbox, session):
    sb = make_sandbox(jobs=1, token="t-main", workspace="abc123xy")
    assert sb.workspace == "abc123xy"
    assert get_me(session, sb).json()["app"]["id_code"] == "abc123xy"


def test_me_answers_each_token_its_own_workspace_and_admin(make_sandbox, session, admin_schema):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme", "t-globex": "globex"})
    bodies = {
        token: get_me(session, sb, token).json() for token in (sb.token, "t-acme", "t-globex")
    }
    for body in bodies.values():
        assert_matches(body, admin_schema)
    assert {t: b["app"]["id_code"] for t, b in bodies.items()} == {
        sb.token: "sandbox",
        "t-acme": "acme",
        "t-globex": "globex",
    }
    assert len({b["id"] for b in bodies.values()}) == 3


def test_tokens_of_one_workspace_share_its_admin(make_sandbox, session):
    sb = make_sandbox(jobs=1, tokens={"t-second": DEFAULT_WORKSPACE})
    assert get_me(session, sb, "t-second").json() == get_me(session, sb).json()


def test_tokens_are_kept_as_given(make_sandbox):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme"})
    assert sb.tokens == {"t-acme": "acme"}
    assert make_sandbox(jobs=1).tokens == {}


def test_extra_tokens_read_the_same_jobs(make_sandbox, session):
    sb = make_sandbox(jobs=2, tokens={"t-acme": "acme"})
    headers = {"Authorization": "Bearer t-acme"}
    for job_id in sb.job_ids:
        assert session.get(status_url(sb, job_id), headers=headers).json() == (
            get_job(session, sb, job_id).json()
        )


def get_as(session, sb, token, job_id):
    return session.get(status_url(sb, job_id), headers={"Authorization": f"Bearer {token}"})


def test_each_workspace_has_its_own_rate_limit(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=2, window=10, tokens={"t-acme": "acme", "t-a2": "acme"})
    leave_room_in_window(10, room=2.0)
    assert [get_job(session, sb, "1001").status_code for _ in range(3)] == [200, 200, 429]
    first = get_as(session, sb, "t-acme", "1001")
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "1"
    # Two tokens of one workspace share its budget.
    assert get_as(session, sb, "t-a2", "1001").status_code == 200
    assert get_as(session, sb, "t-acme", "1001").status_code == 429
    (start,) = sb.window_counts()
    assert sb.window_counts() == {start: 2} and sb.refused() == 1
    assert sb.window_counts("acme") == {start: 2} and sb.refused("acme") == 1
    assert sb.stats["windows"] == [{"start": start, "served": 4, "rejected": 2}]
    assert sb.stats["workspaces"]["acme"] == [{"start": start, "served": 2, "rejected": 1}]
    assert sb.workspaces == ["sandbox", "acme"]


def test_rate_limit_faults_are_counted_as_refused_for_their_workspace(make_sandbox, session):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme"})
    sb.inject("1001", "rate_limit")
    assert get_as(session, sb, "t-acme", "1001").status_code == 429
    assert sb.refused("acme") == 1 and sb.refused() == 0
    assert sum(sb.window_counts("acme").values()) == 0


def test_window_counts_of_an_unknown_workspace_is_a_key_error(make_sandbox):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme"})
    for call in (sb.window_counts, sb.refused, sb.job_outcomes):
        with pytest.raises(KeyError, match="globex"):
            call("globex")


def test_reset_stats_clears_the_counts_per_workspace(make_sandbox, session):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme"})
    get_as(session, sb, "t-acme", "1001")
    assert sum(sb.window_counts("acme").values()) == 1
    sb.reset_stats()
    assert sb.window_counts("acme") == {} and sb.refused("acme") == 0


def test_separate_jobs_give_each_workspace_its_own_outcomes(make_sandbox, session):
    tokens = {"t-acme": "acme", "t-globex": "globex"}
    sb = make_sandbox(jobs=40, seed=5, pending_share=0.0, tokens=tokens, separate_jobs=True)
    alone = Sandbox(jobs=40, seed=5, pending_share=0.0)  # never started: only its plan is read
    assert sb.job_outcomes() == alone.job_outcomes()  # the main workspace keeps seed's
    seen = {}
    for token, id_code in {sb.token: "sandbox", **tokens}.items():
        answers = {j: get_as(session, sb, token, j).json()["status"] for j in sb.job_ids}
        assert answers == sb.job_outcomes(id_code)
        seen[id_code] = answers
    assert seen["acme"] != seen["globex"] != seen["sandbox"] != seen["acme"]


def test_without_separate_jobs_workspaces_share_outcomes(make_sandbox):
    sb = make_sandbox(jobs=20, tokens={"t-acme": "acme"})
    assert sb.job_outcomes("acme") == sb.job_outcomes()


def test_separate_jobs_still_see_jobs_added_later(make_sandbox, session):
    sb = make_sandbox(
        jobs=2,
        pending_share=1.0,
        pending_seconds=(1e9, 1e9),
        tokens={"t-acme": "acme"},
        separate_jobs=True,
    )
    added = sb.add_job("failed")
    assert get_as(session, sb, "t-acme", added).json()["status"] == "failed"
    assert sb.job_outcomes("acme")[added] == "failed"
    assert get_as(session, sb, "t-acme", "1001").json()["status"] == "pending"
    sb.finish_all()  # reaches every workspace's jobs
    for job_id in sb.job_ids:
        status = get_as(session, sb, "t-acme", job_id).json()["status"]
        assert status == sb.job_outcomes("acme")[job_id] != "pending"


def test_me_without_a_valid_token_is_401(sandbox, session, error_schema):
    response = get_me(session, sandbox, "nope")
    assert response.status_code == 401
    assert_matches(response.json(), error_schema)
    assert error_code(response) == "unauthorized"


def test_me_counts_against_the_rate_limit(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=2, window=10)
    leave_room_in_window(10)
    assert get_me(session, sb).headers["X-RateLimit-Remaining"] == "1"
    get_job(session, sb, "1001")
    assert get_me(session, sb).status_code == 429


def test_me_with_another_method_is_405(sandbox, session):
    response = session.post(f"{sandbox.base_url}/me", headers=auth(sandbox), json={})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_me_refuses_an_invalid_intercom_version(sandbox, session):
    response = session.get(
        f"{sandbox.base_url}/me", headers=auth(sandbox, **{"Intercom-Version": "9.9"})
    )
    assert response.status_code == 400 and error_code(response) == "intercom_version_invalid"


@pytest.mark.parametrize(
    "options",
    [
        {"tokens": {DEFAULT_TOKEN: "elsewhere"}},
        {"tokens": {"": "acme"}},
        {"tokens": {"t-acme": ""}},
        {"workspace": ""},
    ],
    ids=["main-token-elsewhere", "empty-token", "empty-workspace", "empty-main-workspace"],
)
def test_inconsistent_tokens_and_workspaces_are_refused(options):
    with pytest.raises(ValueError):
        Sandbox(jobs=1, **options)


# -- jobs over time ------------------------------------------------------------------------------


def test_pending_job_becomes_final_after_its_time(make_sandbox, session):
    sb = make_sandbox(jobs=1, failed_share=1.0, pending_share=1.0, pending_seconds=(0.2, 0.2))
    assert get_job(session, sb, "1001").json()["status"] == "pending"
    time.sleep(0.3)
    assert get_job(session, sb, "1001").json()["status"] == "failed"


def test_finish_all_makes_pending_jobs_final_with_their_outcome(make_sandbox, session):
    sb = make_sandbox(
        jobs=20, seed=2, failed_share=0.5, pending_share=1.0, pending_seconds=(1e9, 1e9)
    )
    assert {get_job(session, sb, j).json()["status"] for j in sb.job_ids} == {"pending"}
    sb.finish_all()
    assert {get_job(session, sb, j).json()["status"] for j in sb.job_ids} == {"success", "failed"}


def test_add_job_returns_a_new_job_with_that_status(sandbox, session):
    job_id = sandbox.add_job(status="failed")
    assert job_id == "1011" and job_id not in sandbox.job_ids
    assert get_job(session, sandbox, job_id).json()["status"] == "failed"


def test_add_job_with_pending_for_is_pending_then_final(sandbox, session):
    job_id = sandbox.add_job(status="success", pending_for=0.2)
    assert get_job(session, sandbox, job_id).json()["status"] == "pending"
    time.sleep(0.3)
    assert get_job(session, sandbox, job_id).json()["resource_id"] == "5011"


def test_add_job_pending_stays_pending_through_finish_all(sandbox, session):
    job_id = sandbox.add_job(status="pending")
    sandbox.finish_all()
    assert get_job(session, sandbox, job_id).json()["status"] == "pending"


def test_enqueue_creates_a_pending_job(sandbox, session, jobs_schema):
    response = session.post(
        f"{sandbox.base_url}/tickets/enqueue",
        headers=auth(sandbox),
        json={"ticket_type_id": "88", "contacts": [{"id": "6762f2d81bb69f9f2193bc54"}]},
    )
    assert response.status_code == 200
    body = response.json()
    assert_matches(body, jobs_schema)
    assert body["status"] == "pending" and body["resource_id"] is None
    assert body["url"] == status_url(sandbox, body["id"])
    assert get_job(session, sandbox, body["id"]).json()["status"] == "pending"


def test_enqueue_needs_a_json_body(sandbox, session):
    response = session.post(
        f"{sandbox.base_url}/tickets/enqueue", headers=auth(sandbox), data=b"not json"
    )
    assert response.status_code == 400
    assert error_code(response) == "parameter_invalid"


# -- rate limit ----------------------------------------------------------------------------------


def leave_room_in_window(window, room=0.5, skew=0.0):
    """Sleep past the next window boundary if it is near, so a short burst fits in one window."""
    now = time.time() + skew
    left = math.floor(now / window + 1) * window - now
    if left < room:
        time.sleep(left + 0.02)


def test_rate_limit_headers_count_down(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=5, window=10)
    leave_room_in_window(10)
    responses = [get_job(session, sb, "1001") for _ in range(3)]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2"]
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"5"}
    reset = int(responses[0].headers["X-RateLimit-Reset"])
    assert reset % 10 == 0 and 0 < reset - time.time() <= 10


def test_past_the_budget_comes_429_rate_limit_exceeded(make_sandbox, session, error_schema):
    sb = make_sandbox(jobs=1, rate_limit=2, window=10)
    leave_room_in_window(10)
    codes = [get_job(session, sb, "1001").status_code for _ in range(2)]
    response = get_job(session, sb, "1001")
    assert codes == [200, 200] and response.status_code == 429
    assert_matches(response.json(), error_schema)
    assert response.json()["errors"] == [
        {"code": "rate_limit_exceeded", "message": "Exceeded rate limit of 2 in 10_seconds"}
    ]
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Limit"] == "2"


def test_next_window_resets_the_budget(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=1, window=1)
    leave_room_in_window(1)
    get_job(session, sb, "1001")
    rejected = get_job(session, sb, "1001")
    assert rejected.status_code == 429
    time.sleep(max(0.0, int(rejected.headers["X-RateLimit-Reset"]) - time.time()) + 0.02)
    fresh = get_job(session, sb, "1001")
    assert fresh.status_code == 200 and fresh.headers["X-RateLimit-Remaining"] == "0"
    assert [(w["served"], w["rejected"]) for w in sb.stats["windows"]] == [(1, 1), (1, 0)]


def test_not_found_answers_count_against_the_budget(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=3, window=10)
    leave_room_in_window(10)
    get_job(session, sb, "404404")
    session.get(f"{sb.base_url}/nowhere", headers=auth(sb))
    assert get_job(session, sb, "1001").headers["X-RateLimit-Remaining"] == "0"


def test_no_rate_headers_when_rate_limit_is_disabled(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=None)
    responses = [get_job(session, sb, "1001") for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert not any(name in responses[-1].headers for name in RATE_HEADERS)


class FakeClock:
    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def test_fixed_window_counts_the_budget_down():
    limiter = FixedWindow(3, 10, clock=FakeClock(1000.0))
    verdicts = [limiter.admit() for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, True]
    assert [v.remaining for v in verdicts] == [2, 1, 0]
    assert {v.limit for v in verdicts} == {3}


def test_fixed_window_refuses_past_the_limit_with_nothing_remaining():
    limiter = FixedWindow(2, 10, clock=FakeClock(1000.0))
    limiter.admit(), limiter.admit()
    refused = [limiter.admit() for _ in range(3)]
    assert [(v.allowed, v.remaining) for v in refused] == [(False, 0)] * 3


def test_fixed_window_reset_is_the_end_of_the_window():
    clock = FakeClock(1003.5)
    limiter = FixedWindow(5, 10, clock=clock)
    assert (limiter.admit().reset, limiter.admit().window_index) == (1010, 100)
    clock.now = 1009.999
    assert limiter.admit().reset == 1010


def test_fixed_window_boundary_starts_a_fresh_budget():
    clock = FakeClock(1009.999)
    limiter = FixedWindow(1, 10, clock=clock)
    assert limiter.admit().allowed and not limiter.admit().allowed
    clock.now = 1010.0  # the first instant of the next window
    fresh = limiter.admit()
    assert (
        fresh.allowed and fresh.remaining == 0 and fresh.reset == 1020 and fresh.window_index == 101
    )


def test_fixed_window_keeps_a_late_clock_reading_in_the_current_window():
    clock = FakeClock(1010.0)
    limiter = FixedWindow(3, 10, clock=clock)
    limiter.admit()
    clock.now = 1009.9  # a thread that read the clock before another's later reading
    late = limiter.admit()
    assert late.window_index == 101 and late.reset == 1020 and late.remaining == 1


def test_fixed_window_refund_gives_the_cost_back():
    limiter = FixedWindow(3, 10, clock=FakeClock(0.0))
    refunded = limiter.refund(limiter.admit())
    assert not refunded.allowed and refunded.remaining == 0
    assert limiter.admit().remaining == 2


def test_fixed_window_without_a_limit_admits_everything_and_numbers_windows():
    clock = FakeClock(25.0)
    limiter = FixedWindow(None, 10, clock=clock)
    verdicts = [limiter.admit() for _ in range(1000)]
    assert all(v.allowed and v.limit is None for v in verdicts)
    assert (verdicts[0].window_index, verdicts[0].reset) == (2, 30)


def test_fixed_window_error_words_the_limit_as_intercom_does():
    assert FixedWindow(167, 10).error() == (
        "rate_limit_exceeded",
        "Exceeded rate limit of 167 in 10_seconds",
    )


@pytest.mark.parametrize(("limit", "window"), [(-1, 10), (5, 0), (5, 2.5)])
def test_fixed_window_refuses_bad_arguments(limit, window):
    with pytest.raises(ValueError):
        FixedWindow(limit, window)


# -- clock skew ----------------------------------------------------------------------------------


def test_clock_skew_shifts_the_date_header(make_sandbox, session):
    sb = make_sandbox(jobs=1, clock_skew=-3600)
    date = parsedate_to_datetime(get_job(session, sb, "1001").headers["Date"]).timestamp()
    assert abs(date - (time.time() - 3600)) < 2


def test_clock_skew_shifts_the_rate_limit_reset(make_sandbox, session):
    sb = make_sandbox(jobs=1, clock_skew=7200.5, window=10)
    reset = int(get_job(session, sb, "1001").headers["X-RateLimit-Reset"])
    assert 0 < reset - (time.time() + 7200.5) <= 10
    assert reset % 10 == 0


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("server_error", 500, "server_error"), ("service_unavailable", 503, "service_unavailable")],
)
def test_server_error_faults_answer_5xx_error_lists(
    sandbox, session, error_schema, fault, status, code
):
    sandbox.inject("1001", fault)
    response = get_job(session, sandbox, "1001")
    assert response.status_code == status
    assert_matches(response.json(), error_schema)
    assert error_code(response) == code
    assert "X-RateLimit-Remaining" in response.headers


def test_drop_fault_closes_the_connection_without_an_answer(sandbox, session):
    sandbox.inject("1001", "drop")
    with pytest.raises(requests.ConnectionError):
        get_job(session, sandbox, "1001")


def test_slow_fault_outlasts_a_short_client_timeout(make_sandbox, session):
    sb = make_sandbox(jobs=1, slow_seconds=5.0)
    sb.inject("1001", "slow")
    with pytest.raises(requests.Timeout):
        get_job(session, sb, "1001", timeout=0.2)


def test_slow_fault_answers_normally_after_slow_seconds(make_sandbox, session):
    sb = make_sandbox(jobs=1, slow_seconds=0.2, failed_share=0.0, pending_share=0.0)
    sb.inject("1001", "slow")
    started = time.perf_counter()
    response = get_job(session, sb, "1001")
    assert time.perf_counter() - started >= 0.2
    assert response.json()["status"] == "success"


def test_html_fault_answers_200_with_an_html_page(sandbox, session):
    sandbox.inject("1001", "html")
    response = get_job(session, sandbox, "1001")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().lower().startswith("<!doctype html>")


def test_not_json_fault_answers_200_json_that_does_not_parse(sandbox, session):
    sandbox.inject("1001", "not_json")
    response = get_job(session, sandbox, "1001")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_no_id_fault_answers_a_job_without_id(sandbox, session):
    sandbox.inject("1001", "no_id")
    body = get_job(session, sandbox, "1001").json()
    assert body["type"] == "job" and body["status"] == "success" and "id" not in body


def test_rate_limit_fault_is_a_429_that_costs_no_budget(make_sandbox, session):
    sb = make_sandbox(jobs=1, rate_limit=5, window=10)
    sb.inject("1001", "rate_limit")
    rejected = get_job(session, sb, "1001")
    assert rejected.status_code == 429 and error_code(rejected) == "rate_limit_exceeded"
    assert rejected.headers["X-RateLimit-Remaining"] == "0"
    assert get_job(session, sb, "1001").headers["X-RateLimit-Remaining"] == "4"


def test_injected_faults_are_consumed_in_order_then_normal(sandbox, session):
    sandbox.inject("1003", "server_error", "service_unavailable")
    codes = [get_job(session, sandbox, "1003").status_code for _ in range(3)]
    assert codes == [500, 503, 200]
    assert get_job(session, sandbox, "1002").status_code == 200


def test_unauthenticated_requests_do_not_consume_injected_faults(sandbox, session):
    sandbox.inject("1001", "server_error")
    assert session.get(status_url(sandbox, "1001")).status_code == 401
    assert get_job(session, sandbox, "1001").status_code == 500


def test_random_faults_follow_their_probability_and_the_seed(make_sandbox, session):
    def codes(seed):
        sb = make_sandbox(jobs=1, seed=seed, faults={"server_error": 0.3})
        return [get_job(session, sb, "1001").status_code for _ in range(100)]

    first = codes(5)
    assert first == codes(5)
    assert 15 <= first.count(500) <= 45 and set(first) == {200, 500}


def test_unknown_fault_names_are_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.inject("1001", "gremlins")
    with pytest.raises(ValueError):
        Sandbox(jobs=1, faults={"gremlins": 0.1})


def test_faults_lists_every_fault_name():
    assert set(FAULTS) == {
        "server_error",
        "service_unavailable",
        "drop",
        "slow",
        "html",
        "not_json",
        "no_id",
        "rate_limit",
    }


def test_faults_are_the_names_of_the_fault_table_in_order():
    assert tuple(FAULT_TABLE) == FAULTS
    assert all(FAULT_TABLE[name].name == name and FAULT_TABLE[name].summary for name in FAULTS)


def expect_error(status, code):
    def check(session, sb, error_schema):
        response = get_job(session, sb, "1001")
        assert response.status_code == status
        assert_matches(response.json(), error_schema)
        assert error_code(response) == code
        assert response.headers["X-RateLimit-Remaining"] == "3"  # it cost one of 4

    return check


def expect_drop(session, sb, error_schema):
    with pytest.raises(requests.ConnectionError):
        get_job(session, sb, "1001")


def expect_slow(session, sb, error_schema):
    started = time.monotonic()
    response = get_job(session, sb, "1001")
    assert time.monotonic() - started >= sb.slow_seconds
    assert response.status_code == 200 and response.json()["id"] == "1001"


def expect_html(session, sb, error_schema):
    response = get_job(session, sb, "1001")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert response.text.lower().startswith("<!doctype html>")


def expect_not_json(session, sb, error_schema):
    response = get_job(session, sb, "1001")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    with pytest.raises(ValueError):
        json.loads(response.content)


def expect_no_id(session, sb, error_schema):
    response = get_job(session, sb, "1001")
    assert response.status_code == 200
    assert response.json()["type"] == "job" and "id" not in response.json()


def expect_rate_limit(session, sb, error_schema):
    response = get_job(session, sb, "1001")
    assert response.status_code == 429 and error_code(response) == "rate_limit_exceeded"
    assert_matches(response.json(), error_schema)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert get_job(session, sb, "1001").headers["X-RateLimit-Remaining"] == "3"  # none spent


#: What each fault's table row says it answers, checked against the running sandbox.
FAULT_EXPECTATIONS = {
    "server_error": expect_error(500, "server_error"),
    "service_unavailable": expect_error(503, "service_unavailable"),
    "drop": expect_drop,
    "slow": expect_slow,
    "html": expect_html,
    "not_json": expect_not_json,
    "no_id": expect_no_id,
    "rate_limit": expect_rate_limit,
}


def test_every_fault_has_an_expectation():
    assert set(FAULT_EXPECTATIONS) == set(FAULTS)


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_does_what_it_says(make_sandbox, session, error_schema, fault):
    sb = make_sandbox(
        jobs=1, rate_limit=4, window=10, slow_seconds=0.2, failed_share=0.0, pending_share=0.0
    )
    leave_room_in_window(10, room=1.0)
    sb.inject("1001", fault)
    FAULT_EXPECTATIONS[fault](session, sb, error_schema)
    assert sb.stats["faults"] == {fault: 1}
    assert get_job(session, sb, "1001").json()["status"] == "success"  # then normal again


# -- latency, stats, lifecycle --------------------------------------------------------------------


def test_latency_delays_every_answer(make_sandbox, session):
    sb = make_sandbox(jobs=1, latency=0.1)
    started = time.perf_counter()
    get_job(session, sb, "1001")
    assert time.perf_counter() - started >= 0.1


def test_stats_count_requests_statuses_jobs_and_faults(sandbox, session):
    sandbox.inject("1002", "server_error")
    get_job(session, sandbox, "1001")
    get_job(session, sandbox, "1001")
    get_job(session, sandbox, "1002")
    session.get(status_url(sandbox, "1001"))
    stats = sandbox.stats
    assert stats["requests"] == 4
    assert stats["by_status"] == {200: 2, 500: 1, 401: 1}
    assert stats["per_job"] == {"1001": 3, "1002": 1}
    assert stats["faults"] == {"server_error": 1}
    assert sum(w["served"] for w in stats["windows"]) == 3


def test_stats_track_the_most_requests_in_flight(make_sandbox):
    sb = make_sandbox(jobs=8, latency=0.5)
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda j: requests.get(status_url(sb, j), headers=auth(sb)).status_code, sb.job_ids
            )
        )
    assert codes == [200] * 8
    assert sb.stats["max_in_flight"] == 8


def test_stats_endpoint_serves_the_snapshot_without_auth(sandbox, session):
    get_job(session, sandbox, "1001")
    stats = session.get(f"{sandbox.base_url}/__sandbox/stats").json()
    assert stats["requests"] == 1 and stats["by_status"] == {"200": 1}
    assert set(stats) == {
        "requests",
        "by_status",
        "per_job",
        "windows",
        "workspaces",
        "max_in_flight",
        "versions",
        "faults",
    }
    assert stats["workspaces"] == {DEFAULT_WORKSPACE: stats["windows"]}


def test_reset_stats_clears_the_counters(sandbox, session):
    get_job(session, sandbox, "1001")
    sandbox.reset_stats()
    assert sandbox.stats["requests"] == 0 and sandbox.stats["per_job"] == {}
    get_job(session, sandbox, "1001")
    response = session.post(f"{sandbox.base_url}/__sandbox/reset_stats")
    assert response.status_code == 200 and sandbox.stats["requests"] == 0


def test_many_concurrent_keep_alive_clients_are_all_served(make_sandbox):
    sb = make_sandbox(jobs=400)
    local = threading.local()

    def fetch(job_id):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return get_job(local.session, sb, job_id).status_code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(fetch, sb.job_ids))
    assert codes == [200] * 400
    assert sb.stats["requests"] == 400


def test_stop_is_prompt_and_closes_open_connections(make_sandbox):
    sb = make_sandbox(jobs=1)
    port = port_of(sb)
    conns = []
    for _ in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/jobs/status/1001", headers=auth(sb))
        conn.getresponse().read()
        conns.append(conn)
    sb.stop()  # returns once the server is down (no wall-clock bound asserted)
    for conn in conns:
        conn.sock.settimeout(1.0)
        assert conn.sock.recv(1) == b""
        conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()


def test_stop_wakes_a_slow_answer_and_closes_its_connection(make_sandbox):
    sb = make_sandbox(jobs=1, slow_seconds=600.0)
    sb.inject("1001", "slow")
    errors = []

    def wait_for_answer():
        try:
            get_job(requests, sb, "1001", timeout=300)
        except requests.RequestException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_answer, daemon=True)
    waiter.start()
    wait_until(lambda: sb.stats["faults"] == {"slow": 1})  # the answer is being held back
    sb.stop()
    waiter.join(timeout=60)  # generous: far below the slow fault's 600 s and the client's 300 s
    assert not waiter.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)


def test_start_and_stop_work_without_a_with_block():
    sb = Sandbox(jobs=1).start()
    try:
        assert requests.get(status_url(sb, "1001"), headers=auth(sb)).status_code == 200
    finally:
        sb.stop()
    sb.stop()  # a second stop is harmless


def test_repr_never_shows_the_token(make_sandbox):
    sb = make_sandbox(jobs=3, token="very-secret-token")
    assert "very-secret-token" not in repr(sb)
    assert sb.base_url in repr(sb)


def test_repr_never_shows_extra_tokens(make_sandbox):
    sb = make_sandbox(jobs=1, tokens={"very-secret-extra": "acme"})
    assert "very-secret-extra" not in repr(sb)


# -- conformance with the official SDK --------------------------------------------------------


@pytest.fixture
def intercom_sdk():
    return pytest.importorskip("intercom")


def test_official_sdk_reads_job_status(make_sandbox, intercom_sdk):
    sb = make_sandbox(jobs=5, seed=0, failed_share=0.0, pending_share=0.0)
    job = intercom_sdk.Intercom(token=sb.token, base_url=sb.base_url).jobs.status(job_id="1002")
    assert job.id == "1002" and job.status == "success" and job.resource_id == "5002"


def test_official_sdk_raises_unauthorized_for_a_wrong_token(sandbox, intercom_sdk):
    client = intercom_sdk.Intercom(token="wrong", base_url=sandbox.base_url)
    with pytest.raises(intercom_sdk.UnauthorizedError):
        client.jobs.status(job_id="1001")


def test_official_sdk_raises_not_found_for_an_unknown_job(sandbox, intercom_sdk):
    client = intercom_sdk.Intercom(token=sandbox.token, base_url=sandbox.base_url)
    with pytest.raises(intercom_sdk.NotFoundError):
        client.jobs.status(job_id="424242")


def test_official_sdk_identifies_the_admin_of_each_workspace(make_sandbox, intercom_sdk):
    sb = make_sandbox(jobs=1, tokens={"t-acme": "acme"})
    admins = [
        intercom_sdk.Intercom(token=token, base_url=sb.base_url).admins.identify()
        for token in (sb.token, "t-acme")
    ]
    assert [admin.app.id_code for admin in admins] == ["sandbox", "acme"]
    assert admins[0].id != admins[1].id and admins[0].type == "admin"


def test_queue_jobs_finish_in_creation_order_on_the_sandbox_clock():
    from intercom_jobs_nb._clock import FakeClock
    from intercom_jobs_nb.sandbox import Queue

    clock = FakeClock()
    with Sandbox(jobs=100, completion=Queue(rate=10, jitter=0.0), clock=clock) as sb:
        assert sb.final_times() == {}
        clock.advance(5.05)
        done = sb.final_times()
    assert sorted(done, key=int) == sb.job_ids[:50]  # 10 a second, first ones first
    assert all(abs(t - (int(job_id) - 1000) / 10) < 1e-6 for job_id, t in done.items())


def test_independent_jobs_finish_each_in_its_own_time():
    from intercom_jobs_nb._clock import FakeClock
    from intercom_jobs_nb.sandbox import Independent

    clock = FakeClock()
    with Sandbox(jobs=200, completion=Independent(median=10, sigma=0.5), clock=clock) as sb:
        clock.advance(10.0)
        done = sb.final_times()
    assert 60 < len(done) < 140  # about half by the median
    assert sorted(done, key=int) != sb.job_ids[: len(done)]  # not in creation order


def test_unnoticed_is_the_time_from_final_to_the_first_answer_saying_so():
    from intercom_jobs_nb._clock import FakeClock
    from intercom_jobs_nb.sandbox import Queue

    clock = FakeClock()
    with Sandbox(jobs=3, completion=Queue(rate=1, jitter=0.0), clock=clock) as sb:
        url = f"{sb.base_url}/jobs/status/{sb.job_ids[0]}"
        headers = {"Authorization": f"Bearer {sb.token}"}
        assert requests.get(url, headers=headers, timeout=5).json()["status"] == "pending"
        clock.advance(3.5)  # final at 1 s: unnoticed for 2.5 s
        assert requests.get(url, headers=headers, timeout=5).json()["status"] != "pending"
        clock.advance(1.0)
        requests.get(url, headers=headers, timeout=5)  # a second final answer changes nothing
        assert sb.unnoticed() == {sb.job_ids[0]: pytest.approx(2.5)}


def test_an_unknown_completion_model_is_refused():
    with pytest.raises(ValueError, match="completion"):
        Sandbox(jobs=1, completion="lifo")
