"""The HTTP side: a threading HTTP/1.1 server and its request handler.

The handler reads a request, routes it (``_routes.classify``), asks the sandbox to count it
and decide its answer (``Sandbox._admit``: the one lock section per request), then sends the
decision: one ``write`` per answer, the head built by hand. ``HEAD`` is answered exactly like
``GET`` (same status and headers, ``Content-Length`` included) without the body.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any

from ._routes import R_ENQUEUE, Decision, classify
from ._store import JSON, error_body
from ._tickets import parse_enqueue

if TYPE_CHECKING:
    from ._sandbox import Sandbox

#: Paths that steer the sandbox rather than stand in for the API: no token, not counted.
CONTROL_PREFIX = "/__sandbox/"
_CONTROL_METHODS = {"stats": "GET", "reset_stats": "POST"}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "intercom-jobs-nb-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: a benchmark's stderr is not a log file."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return email.utils.formatdate(timestamp, usegmt=True)
        return self.server.http_date()

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # -- sending -----------------------------------------------------------------------------

    def _send(
        self, code: int, body: bytes, *, request_id: str, content_type: str = JSON, extra: str = ""
    ) -> None:
        # One write per answer: the head is built by hand instead of send_header() calls.
        head = (
            f"HTTP/1.1 {code} {_REASONS.get(code, '')}\r\n"
            f"Server: {self.server_version}\r\n"
            f"Date: {self.date_time_string()}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Request-Id: {request_id}\r\n"
            f"{extra}"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        if self.command == "HEAD":  # the length of the body a GET gets, and no body
            body = b""
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

    def _send_error(self, code: int, error: tuple[str, str | None], *, extra: str = "") -> None:
        request_id = str(uuid.uuid4())
        self._send(code, error_body(request_id, *error), request_id=request_id, extra=extra)

    # -- receiving ---------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method: str) -> None:
        sb = self.server.sandbox
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send_error(400, ("parameter_invalid", "Invalid Content-Length"))
            return
        path = self.path.split("?", 1)[0]
        if path.startswith(CONTROL_PREFIX):
            self._control(sb, method, path[len(CONTROL_PREFIX) :])
            return

        route, job_id, allowed = classify(path, method)
        # An enqueue body is checked (and its ticket mostly rendered) here, outside the lock:
        # this reads only the ticket types, fixed at construction.
        payload = (
            parse_enqueue(body, sb._ticket_type_bodies, int(sb._server_time()))
            if route == R_ENQUEUE
            else None
        )

        d = sb._admit(
            route,
            job_id,
            sb._workspaces.get(self.headers.get("Authorization", "")),
            self.headers.get("Intercom-Version"),
            payload,
        )
        try:
            self._answer(sb, d, allowed)
        finally:
            sb._leave()

    def _answer(self, sb: Sandbox, d: Decision, allowed: str) -> None:
        if sb.latency:
            time.sleep(sb.latency)
        fault = d.fault
        if fault is not None:
            if fault.drop:
                self.close_connection = True
                return
            if fault.delay:
                sb._stopping.wait(sb.slow_seconds)
        if sb._stopping.is_set():  # a server going down does not answer
            self.close_connection = True
            return
        rate = d.rate
        extra = (
            ""
            if rate is None or rate.limit is None
            else (
                f"X-RateLimit-Limit: {rate.limit}\r\n"
                f"X-RateLimit-Remaining: {rate.remaining}\r\n"
                f"X-RateLimit-Reset: {rate.reset}\r\n"
            )
        )
        if d.error is not None:
            if d.code == 405:
                extra += f"Allow: {allowed}\r\n"
            self._send_error(d.code, d.error, extra=extra)
            return
        content_type = JSON
        if fault is not None and fault.body is not None:
            body = fault.body(d.job, sb.base_url)
            content_type = fault.content_type
        elif d.body is not None:
            body = d.body
        else:
            assert d.job is not None
            body = sb._job_body(d.job)
        self._send(
            d.code, body, request_id=str(uuid.uuid4()), content_type=content_type, extra=extra
        )

    def _control(self, sb: Sandbox, method: str, name: str) -> None:
        wanted = _CONTROL_METHODS.get(name)
        if wanted is None:
            self._send_error(404, ("not_found", "Resource Not Found"))
        elif method != wanted and not (method == "HEAD" and wanted == "GET"):
            self._send_error(
                405, ("method_not_allowed", "Method Not Allowed"), extra=f"Allow: {wanted}\r\n"
            )
        else:
            if name == "reset_stats":
                sb.reset_stats()
            body = json.dumps(sb.stats).encode()
            self._send(200, body, request_id=str(uuid.uuid4()))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 resets connections under 30+ concurrent clients

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._date_cache: tuple[int, str] = (-1, "")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), which can stall on a DNS lookup.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Swallow errors from clients that went away; never write to stderr."""

    def http_date(self) -> str:
        """The ``Date`` header of the (skewed) server clock, formatted once a second."""
        now = int(self.sandbox._server_time())
        cached = self._date_cache
        if cached[0] == now:
            return cached[1]
        text = email.utils.formatdate(now, usegmt=True)
        self._date_cache = (now, text)
        return text

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            # shutdown() wakes the handler thread blocked in recv(); it closes the socket itself.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
