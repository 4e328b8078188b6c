"""Retries, faults, malformed answers, redirects and the token's safety, over real sockets."""

from __future__ import annotations

import http.server
import threading

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import transport


def one(sb, opts, job_id, **overrides):
    return ij.fetch_jobs([job_id], **opts(sb, **overrides)).iloc[0]


@pytest.mark.parametrize("fault", ["server_error", "service_unavailable", "drop"])
def test_a_passing_failure_is_retried_until_it_succeeds(final_sandbox, opts, fault):
    job_id = final_sandbox.job_ids[0]
    final_sandbox.inject(job_id, fault, fault)
    row = one(final_sandbox, opts, job_id, retries=2)
    assert row["status"] in ("success", "failed") and pd.isna(row["error_code"])
    assert row["attempts"] == 3


@pytest.mark.parametrize(
    ("fault", "code", "http_status"),
    [
        ("server_error", "server_error", 500),
        ("service_unavailable", "service_unavailable", 503),
        ("drop", "connection_error", None),
    ],
)
def test_retries_are_bounded_and_the_row_says_why(final_sandbox, opts, fault, code, http_status):
    job_id = final_sandbox.job_ids[0]
    final_sandbox.inject(job_id, *[fault] * 5)
    row = one(final_sandbox, opts, job_id, retries=1)
    assert row["error_code"] == code and pd.isna(row["status"])
    assert row["attempts"] == 2
    assert pd.isna(row["http_status"]) if http_status is None else row["http_status"] == http_status
    assert final_sandbox.stats["per_job"][job_id] == 2


def test_a_slow_answer_becomes_a_timeout_row(opts):
    with ij.Sandbox(jobs=3, pending_share=0.0, slow_seconds=3.0) as sb:
        sb.inject(sb.job_ids[0], "slow")
        row = one(sb, opts, sb.job_ids[0], timeout=0.3, retries=0)
    assert row["error_code"] == "timeout" and "0.3 s" in row["error_message"]


def test_a_timeout_is_retried(opts):
    with ij.Sandbox(jobs=3, pending_share=0.0, slow_seconds=3.0) as sb:
        sb.inject(sb.job_ids[0], "slow")
        row = one(sb, opts, sb.job_ids[0], timeout=0.5, retries=1)
    assert pd.isna(row["error_code"]) and row["attempts"] == 2


@pytest.mark.parametrize("fault", ["html", "not_json", "no_id"])
def test_a_malformed_answer_is_asked_again_once(final_sandbox, opts, fault):
    job_id = final_sandbox.job_ids[0]
    final_sandbox.inject(job_id, fault)
    row = one(final_sandbox, opts, job_id, retries=4)
    assert pd.isna(row["error_code"]) and row["attempts"] == 2


@pytest.mark.parametrize("fault", ["html", "not_json", "no_id"])
def test_a_malformed_answer_twice_is_an_invalid_response_row(final_sandbox, opts, fault):
    job_id = final_sandbox.job_ids[0]
    final_sandbox.inject(job_id, *[fault] * 5)
    row = one(final_sandbox, opts, job_id, retries=4)
    assert row["error_code"] == "invalid_response" and row["attempts"] == 2
    assert final_sandbox.stats["per_job"][job_id] == 2


def test_a_4xx_other_than_429_is_not_retried(final_sandbox, opts):
    row = one(final_sandbox, opts, "31337", retries=4)
    assert row["error_code"] == "job_not_found" and row["attempts"] == 1


def test_one_failing_job_does_not_disturb_the_others(final_sandbox, opts):
    bad = final_sandbox.job_ids[3]
    final_sandbox.inject(bad, *["drop"] * 5)
    df = ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, retries=1))
    assert df.set_index("job_id").loc[bad, "error_code"] == "connection_error"
    assert df["error_code"].notna().sum() == 1


def test_backoff_grows_exponentially_with_jitter(monkeypatch):
    monkeypatch.setattr(transport, "BACKOFF_BASE", 0.5)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        delays = [transport.backoff(attempt) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert len(set(delays)) > 100  # jittered, not a fixed schedule
    assert transport.backoff(30) <= transport.BACKOFF_CAP


# -- the token ------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A host that records the Authorization headers it receives, and maybe redirects."""

    seen: list[str | None] = []
    location: str | None = None

    def do_GET(self):  # noqa: N802
        type(self).seen.append(self.headers.get("Authorization"))
        if self.location:
            self.send_response(302)
            self.send_header("Location", self.location + self.path)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_redirects_are_not_followed_with_the_token(opts):
    other = type("Other", (_Recorder,), {"seen": [], "location": None})
    first = type("First", (_Recorder,), {"seen": [], "location": None})
    target, redirector = _serve(other), _serve(first)
    first.location = f"http://127.0.0.1:{target.server_address[1]}"
    try:
        df = ij.fetch_jobs(
            ["1001"],
            token="s3cret-token",
            progress=False,
            retries=0,
            base_url=f"http://127.0.0.1:{redirector.server_address[1]}",
        )
    finally:
        target.shutdown()
        redirector.shutdown()
    assert first.seen == ["Bearer s3cret-token"]
    assert other.seen == []
    row = df.iloc[0]
    assert row["error_code"] == "invalid_response" and "redirect" in row["error_message"]


def test_plain_http_is_refused_for_a_remote_host():
    with pytest.raises(ij.ConfigurationError, match="plain http"):
        ij.fetch_jobs(["1"], token="t", base_url="http://api.intercom.io", progress=False)


def test_the_token_is_nowhere_in_results_errors_or_files(final_sandbox, opts, tmp_path):
    token = final_sandbox.token
    final_sandbox.inject(final_sandbox.job_ids[0], *["drop"] * 3)
    df = ij.fetch_jobs(
        [*final_sandbox.job_ids[:5], "bad id", "404404"], **opts(final_sandbox, retries=0)
    )
    path = ij.export_csv(df, tmp_path / "out.csv")
    assert token not in df.to_csv() and token not in repr(df)
    assert token not in path.read_text()
    with pytest.raises(ij.AuthenticationError) as caught:
        ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, token="wrong-" + token))
    assert token not in str(caught.value) and token not in repr(caught.value)


def test_options_repr_hides_the_token():
    from intercom_jobs_nb.options import Options

    options = Options.build(token="very-secret", base_url="http://127.0.0.1:1")
    assert "very-secret" not in repr(options) and "very-secret" not in str(options.token)


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """A host whose every answer is 403 forbidden: the token may not read jobs."""

    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        body = (
            b'{"type":"error.list","request_id":null,"errors":[{"code":"forbidden",'
            b'"message":"Token lacks the scope"}]}'
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_forbidden_token_stops_the_run_instead_of_failing_every_job():
    server = _serve(_Forbidden)
    try:
        with pytest.raises(ij.AuthenticationError, match="forbidden"):
            ij.fetch_jobs(
                [str(n) for n in range(100)],
                token="t",
                progress=False,
                base_url=f"http://127.0.0.1:{server.server_address[1]}",
            )
    finally:
        server.shutdown()
    assert _Forbidden.hits == 1
