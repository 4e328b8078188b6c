"""Retries, faults, malformed answers, redirects, the token's safety, kept-alive connections and
TLS (certificates checked, the whole answer bounded), over real sockets."""

from __future__ import annotations

import contextlib
import gc
import http.server
import json
import socket
import ssl
import threading
import time

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import _transport as transport
from intercom_jobs_nb._options import Options


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
    from intercom_jobs_nb._options import Options

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


# -- the connection: kept alive, opened again, TLS ---------------------------------------------

# A self-signed certificate for 127.0.0.1 (valid until 2126), for these tests only.
_CERT = b"""-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUFE5AE0syMmNlbtD1NEuJbbjdtdMwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMjEwMzkwOFoYDzIxMjYxMTA4
MTAzOTA4WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATq2a8Oq1zGS8TWQyhDS5qn/jV/fHcBCQNewsOsUClVMAGlL7hMD8aO
c8BnIWHH//LF2iaiebwFdBTsQWYvnmKGo2EwXzAdBgNVHQ4EFgQUJrq65Zx0F8+D
P9j1//y231gkDy8wHwYDVR0jBBgwFoAUJrq65Zx0F8+DP9j1//y231gkDy8wDwYD
VR0RBAgwBocEfwAAATAMBgNVHRMBAf8EAjAAMAoGCCqGSM49BAMCA0gAMEUCIQDb
MGmBhl9Fjn5EG1J4giR1ZywmaHc4VbQsvNw4NfY7LwIgGnBtbWqZr9LbJ11okZQp
KV9KJJN21FFB15T+l/DYf4w=
-----END CERTIFICATE-----
"""
_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgf9/id1F2kxU/9CF3
j51HlkPLQPqHHRYrivNRjlBPHdehRANCAATq2a8Oq1zGS8TWQyhDS5qn/jV/fHcB
CQNewsOsUClVMAGlL7hMD8aOc8BnIWHH//LF2iaiebwFdBTsQWYvnmKG
-----END PRIVATE KEY-----
"""


def _job(job_id: str) -> bytes:
    return json.dumps({"type": "job", "id": job_id, "status": "success"}).encode()


class _Raw:
    """A loopback server read and written by hand: it answers each request with a job's
    status (``head`` then ``body``, or ``drip`` bytes apart), counts connections, and may close
    a connection after an answer without saying so (as a server's idle timeout does)."""

    def __init__(self, *, close_after: bool = False, drip: float = 0.0, tls_dir=None) -> None:
        self.close_after = close_after
        self.drip = drip
        self.connections = 0
        self.answers = 0
        self.closed = threading.Event()
        self.hung_up = threading.Event()  # a client closed its connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._context = None
        if tls_dir is not None:
            (tls_dir / "cert.pem").write_bytes(_CERT)
            (tls_dir / "key.pem").write_bytes(_KEY)
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self._socks: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()
        scheme = "http" if tls_dir is None else "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_side=True)
                self._socks.append(sock)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        self.hung_up.set()
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                job_id = head.split(b" ")[1].rsplit(b"/", 1)[-1].decode()
                body = _job(job_id)
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body)
                )
                if self.drip:
                    for k in range(len(body)):
                        time.sleep(self.drip)
                        sock.sendall(body[k : k + 1])
                else:
                    sock.sendall(body)
                self.answers += 1
                if self.close_after:
                    sock.close()
                    self.closed.set()
                    return
        except OSError:
            return

    def __enter__(self) -> _Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        self._listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()


def _client(base_url: str, **overrides):
    options = Options.build(token="tok-0123456789", base_url=base_url, progress=False, **overrides)
    watchdog = transport.Watchdog()
    return transport.Connection(options, watchdog), watchdog


def test_one_client_keeps_one_connection_alive_for_every_request():
    with _Raw() as srv:
        client, watchdog = _client(srv.base_url)
        try:
            answers = [client.get(f"/jobs/status/{n}") for n in range(5)]
        finally:
            client.close()
            watchdog.close()
    assert [a.status for a in answers] == [200] * 5
    assert [json.loads(a.body)["id"] for a in answers] == [str(n) for n in range(5)]
    assert answers[0].headers.get("content-type") == answers[0].headers["Content-Type"]
    assert srv.connections == 1


def test_a_connection_the_server_closed_while_idle_is_opened_again_without_an_error():
    with _Raw(close_after=True) as srv:
        client, watchdog = _client(srv.base_url)
        try:
            first = client.get("/jobs/status/1")
            assert srv.closed.wait(5)
            time.sleep(0.1)  # the server's FIN has reached the client's socket
            second = client.get("/jobs/status/2")
        finally:
            client.close()
            watchdog.close()
    assert (first.status, second.status) == (200, 200)
    assert json.loads(second.body)["id"] == "2"
    assert srv.connections == 2


def test_a_client_dropped_without_close_closes_its_connection():
    # The engine's watchdog outlives the clients it watches: it must not keep their sockets open.
    with _Raw() as srv:
        client, watchdog = _client(srv.base_url)
        try:
            assert client.get("/jobs/status/1").status == 200
            del client
            gc.collect()
            assert srv.hung_up.wait(5)
        finally:
            watchdog.close()


def test_an_answer_shorter_than_its_content_length_is_a_connection_error():
    raw = b'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{"type": "job"'

    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.wfile.write(raw)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = _serve(Short)
    client, watchdog = _client(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
    try:
        with pytest.raises(transport.TransportFailure) as caught:
            client.get("/jobs/status/1")
    finally:
        client.close()
        watchdog.close()
        server.shutdown()
    assert caught.value.code == "connection_error" and caught.value.sent


def test_nothing_is_sent_to_a_port_nobody_listens_on():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    client, watchdog = _client(f"http://127.0.0.1:{port}", timeout=5)
    try:
        with pytest.raises(transport.TransportFailure) as caught:
            client.get("/jobs/status/1")
    finally:
        client.close()
        watchdog.close()
    assert caught.value.code == "connection_error" and not caught.value.sent


def test_tls_checks_the_certificate_and_sends_nothing_to_an_unknown_one(tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with _Raw(tls_dir=tmp_path) as srv:
        client, watchdog = _client(srv.base_url, timeout=5)
        try:
            with pytest.raises(transport.TransportFailure) as caught:
                client.get("/jobs/status/1")
        finally:
            client.close()
            watchdog.close()
        assert srv.answers == 0
    assert caught.value.code == "connection_error" and not caught.value.sent
    assert "certificate" in caught.value.message.lower()


def test_tls_answers_are_read_and_a_tls_drip_is_cut_at_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
    with _Raw(tls_dir=tmp_path) as srv:
        client, watchdog = _client(srv.base_url, timeout=5)
        try:
            answer = client.get("/jobs/status/7")
        finally:
            client.close()
            watchdog.close()
    assert answer.status == 200 and json.loads(answer.body)["id"] == "7"
    # One byte every 0.2 s: no single read waits 1 s, only the bound on the whole answer
    # (the watchdog, which must reach a TLS socket too) ends it.
    with _Raw(tls_dir=tmp_path, drip=0.2) as srv:
        client, watchdog = _client(srv.base_url, timeout=1)
        try:
            with pytest.raises(transport.TransportFailure) as caught:
                client.get("/jobs/status/7")
            dripped_whole_body = srv.answers  # the drip takes about 12 s
        finally:
            client.close()
            watchdog.close()
    assert caught.value.code == "timeout"
    assert dripped_whole_body == 0  # the client gave up in the middle of the drip


def _answering(raw: bytes):
    """A loopback server that answers every GET with ``raw`` and closes the connection."""

    class Fixed(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.wfile.write(raw)
            self.close_connection = True

        def log_message(self, *args):
            pass

    return _serve(Fixed)


def test_a_repeated_header_is_its_values_joined_and_names_are_read_whatever_their_case():
    body = _job("1")
    raw = (
        b"HTTP/1.1 200 OK\r\ncontent-TYPE: application/json\r\nSet-Cookie: a=1\r\n"
        b"SET-COOKIE: b=2\r\nX-Empty:\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    server = _answering(raw)
    client, watchdog = _client(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
    try:
        answer = client.get("/jobs/status/1")
    finally:
        client.close()
        watchdog.close()
        server.shutdown()
    headers = answer.headers
    assert answer.body == body
    assert headers["Content-Type"] == headers.get("content-type") == "application/json"
    assert headers.get("Set-Cookie") == "a=1, b=2"  # as urllib3 joins them, through a proxy
    assert headers["x-empty"] == "" and "X-EMPTY" in headers


def test_a_drip_through_a_proxy_tunnel_is_cut_at_the_timeout(tmp_path, monkeypatch):
    # Through the environment's proxy, urllib3 wraps the tunnel's socket in TLS: the watchdog
    # must cut the socket the connection has when the deadline passes, not the one it began with.
    from netkit import CA_PEM, HOST, ConnectProxy, LoopbackOnly, TLSFront

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    LoopbackOnly(monkeypatch)
    (tmp_path / "ca.pem").write_bytes(CA_PEM)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    with _Raw(drip=0.2) as srv:
        backend = ("127.0.0.1", int(srv.base_url.rsplit(":", 1)[1]))
        with (
            TLSFront(backend, tmp_path) as front,
            ConnectProxy({f"{HOST}:443": ("127.0.0.1", front.port)}) as proxy,
        ):
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            client, watchdog = _client(f"https://{HOST}", timeout=1)
            try:
                with pytest.raises(transport.TransportFailure) as caught:
                    client.get("/jobs/status/7")
                dripped_whole_body = srv.answers  # the drip takes about 12 s
            finally:
                client.close()
                watchdog.close()
            assert proxy.tunnelled() == 1
    assert caught.value.code == "timeout" and caught.value.sent
    assert dripped_whole_body == 0  # the client gave up in the middle of the drip
