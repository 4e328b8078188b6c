"""A deliberately misbehaving Intercom on loopback: a scriptable raw HTTP/1.1 server.

`HostileServer` listens on 127.0.0.1 and, for every request it reads, asks a handler what to
send back. The handler returns an `Answer`: the raw pieces of an HTTP answer (status line,
headers as raw bytes if need be, a body given whole, in timed pieces, as an endless stream,
chunked or not), or "hang up without answering", or arbitrary bytes. Nothing is checked or
cleaned up on the way out, so the answer can be as wrong as a test wants::

    def handler(request):
        if request.job_id == "1002":
            return Answer(body=b"[" * 1_000_000, headers=[("Content-Type", "application/json")])
        return job_answer(request.job_id)

    with HostileServer(handler) as srv:
        df = ij.fetch_jobs(["1001", "1002"], token="t", base_url=srv.base_url, progress=False)
        assert srv.requests == 2

The server keeps connections alive (HTTP/1.1), counts what it receives (`requests`, `paths`,
`seen`), can enforce a fixed-window rate limit of its own (``rate_limit=(20, 1)``) with
Intercom's headers, prints nothing, and stops promptly on exit: every client socket is shut,
even one it is dripping bytes into or streaming an endless body to. An exception raised by the
handler is kept and raised again by ``__exit__`` (the client saw the connection drop).

Standard library only. Its threads are started with the real `threading.Thread.start`, saved at
import, so a test may monkeypatch ``Thread.start`` to watch the client's threads alone.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http
import itertools
import json
import math
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from intercom_jobs_nb._clock import SYSTEM, Clock

__all__ = [
    "Answer",
    "HostileServer",
    "Request",
    "bomb",
    "Endless",
    "error_answer",
    "http_date",
    "job_answer",
    "job_body",
]

_START = threading.Thread.start  # the real one, whatever a test later patches
_MAX_HEAD = 65536  # a request head longer than this ends the connection
_JOB_PATH = "/jobs/status/"

HeaderValue = str | bytes | int | float
Header = tuple[str | bytes, HeaderValue]


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    number: int  # 1 for the first request this server received, then 2, 3...
    attempt: int  # 1 for the first request for this job id, 2 for the second...
    method: str
    target: str  # as sent: a path, or an absolute URL when the client took us for a proxy
    path: str  # the path part of the target
    headers: dict[str, str]  # names lower-cased, values decoded as ISO-8859-1 (byte for byte)
    job_id: str | None  # what follows /jobs/status/ in the path, if it is such a path
    received_at: float  # time.time() when the request head was read


@dataclass
class Answer:
    """What to send back, byte for byte.

    The server adds ``Content-Length`` (a bytes body sent unchunked), ``Transfer-Encoding:
    chunked`` (``chunked=True``), ``Connection: close`` (when it will close) and ``Date`` (its
    clock) unless the headers already name them (compared case-insensitively); it adds nothing
    else and checks nothing.

    Attributes:
        status: the status code; the reason phrase is ``reason`` or the standard one.
        headers: (name, value) pairs in order; str is sent as UTF-8, bytes as they are.
        body: bytes, or an iterable of bytes chunks (possibly endless: `Endless`). An iterable sent
            unchunked has no Content-Length: the connection is closed after it.
        chunked: send the body with chunked transfer encoding, one HTTP chunk per body chunk.
        piece_size: send a bytes body in pieces of this many bytes (with ``delay`` before each).
        delay: seconds to wait before each body chunk or piece (e.g. a drip of 1 byte / 0.5 s).
        status_line: replaces the whole first line (CRLF included): b"HTTP/1.1 ???\\r\\n".
        raw: send exactly these bytes instead of an answer, then close the connection.
        hang_up: close the connection without sending anything.
        close: close the connection after this answer.
        wait: seconds to wait before sending anything at all.
    """

    status: int = 200
    headers: list[Header] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    reason: str = ""
    chunked: bool = False
    piece_size: int | None = None
    delay: float = 0.0
    status_line: bytes | None = None
    raw: bytes | None = None
    hang_up: bool = False
    close: bool = False
    wait: float = 0.0

    def header(self, name: str) -> HeaderValue | None:
        """The value of the first header of this name, or None."""
        wanted = name.lower().encode()
        for key, value in self.headers:
            if _bytes(key).lower() == wanted:
                return value
        return None

    def with_headers(self, *headers: Header) -> Answer:
        """A copy with these headers replacing any of the same names."""
        names = {_bytes(k).lower() for k, _ in headers}
        kept = [(k, v) for k, v in self.headers if _bytes(k).lower() not in names]
        return replace(self, headers=[*kept, *headers])


# -- ready-made answers -------------------------------------------------------------------------


def http_date(when: float | None = None) -> str:
    """An HTTP ``Date`` value (IMF-fixdate) for ``when`` (default: now)."""
    return email.utils.formatdate(time.time() if when is None else when, usegmt=True)


def job_body(job_id: str, status: str | None = "success", **fields: object) -> bytes:
    """The JSON of a job as Intercom sends it; ``fields`` override or add keys (None is null)."""
    resource_id = None
    if status == "success" and job_id.isdigit():
        resource_id = str(int(job_id) + 4000)
    job: dict[str, object] = {
        "type": "job",
        "id": job_id,
        "status": status,
        "resource_type": "ticket",
        "resource_id": resource_id,
        "resource_url": (f"https://api.intercom.io/tickets/{resource_id}" if resource_id else None),
        "url": f"https://api.intercom.io/jobs/status/{job_id}",
    }
    job.update(fields)
    return json.dumps(job).encode()


def job_answer(
    job_id: str | None,
    status: str | None = "success",
    *,
    rate_limit: tuple[HeaderValue, HeaderValue, HeaderValue] | None = None,
    headers: Iterable[Header] = (),
    **fields: object,
) -> Answer:
    """A 200 with a valid job; ``rate_limit=(limit, remaining, reset)`` adds the three headers."""
    out: list[Header] = [("Content-Type", "application/json; charset=utf-8")]
    if rate_limit is not None:
        out += rate_limit_headers(*rate_limit)
    out += list(headers)
    return Answer(200, out, job_body(job_id or "", status, **fields))


def error_answer(
    http_status: int,
    code: str,
    message: str,
    *,
    request_id: str | None = "req-hostile",
    headers: Iterable[Header] = (),
) -> Answer:
    """An Intercom ``error.list`` answer."""
    body = {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }
    out: list[Header] = [("Content-Type", "application/json; charset=utf-8"), *headers]
    return Answer(http_status, out, json.dumps(body).encode())


def rate_limit_headers(
    limit: HeaderValue, remaining: HeaderValue, reset: HeaderValue
) -> list[Header]:
    return [
        ("X-RateLimit-Limit", limit),
        ("X-RateLimit-Remaining", remaining),
        ("X-RateLimit-Reset", reset),
    ]


@functools.lru_cache(maxsize=4)
def bomb(decoded_bytes: int = 100 * 2**20, encoding: str = "gzip") -> bytes:
    """``decoded_bytes`` zero bytes, compressed as ``gzip`` or ``deflate`` (zlib) content."""
    wbits = {"gzip": 31, "deflate": 15}[encoding]
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(2**20)
    out = []
    whole, rest = divmod(decoded_bytes, len(block))
    for _ in range(whole):
        out.append(packer.compress(block))
    out.append(packer.compress(block[:rest]))
    out.append(packer.flush())
    return b"".join(out)


class Endless:
    """An endless body: ``prefix``, then ``chunk`` again and again. ``given`` counts the bytes
    handed to the server so far (what a client read, give or take the socket buffers).

    ``ceiling`` is a safety net, not part of the misbehaviour: after that many bytes the stream
    ends after all. A client that has read that far has no size cap; ending the stream keeps such
    a client from filling the machine's memory, and ``given >= ceiling`` shows what happened.
    """

    def __init__(
        self, prefix: bytes = b"", chunk: bytes = b"a" * 65536, ceiling: int | None = None
    ) -> None:
        self.prefix = prefix
        self.chunk = chunk
        self.ceiling = ceiling
        self.given = 0
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        for piece in itertools.chain(
            [self.prefix] if self.prefix else [], itertools.repeat(self.chunk)
        ):
            with self._lock:
                if self.ceiling is not None and self.given >= self.ceiling:
                    return
                self.given += len(piece)
            yield piece


# -- the server ---------------------------------------------------------------------------------


def _bytes(value: HeaderValue) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


class _Listener(socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, owner: HostileServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler)

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(
            target=self.owner._serve_connection,
            args=(request,),
            name="hostile-connection",
            daemon=True,
        )
        self.owner._track_thread(thread)
        _START(thread)

    def handle_error(self, request, client_address) -> None:
        pass  # never print


class HostileServer:
    """A raw HTTP/1.1 server on 127.0.0.1 that answers whatever ``handler`` says.

    Args:
        handler: ``handler(request) -> Answer``, called once per request (from the connection's
            thread). Default: every job is a ``success``.
        rate_limit: ``(n, window_seconds)``: at most n requests per fixed window aligned to
            the server's clock (``floor(time / window)``); past it the answer is a 429
            ``rate_limit_exceeded`` with ``Retry-After``. Every answer then carries
            ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (UNIX seconds), unless the
            handler's answer sets them. A ``Date`` the handler sets is kept, even on a 429.
        clock: the server's time (its windows and ``Date``): a test passes the `FakeClock` its
            run waits on, and the windows pass in milliseconds.
    """

    def __init__(
        self,
        handler: Callable[[Request], Answer] | None = None,
        *,
        rate_limit: tuple[int, float] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.handler = handler or (lambda request: job_answer(request.job_id))
        self.rate_limit = rate_limit
        self.seen: list[Request] = []  # every request, in arrival order
        self.statuses: list[int] = []  # the status of every answer sent (raw ones: 0)
        self.errors: list[BaseException] = []  # what the handler (or the server) raised
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._window = (-1, 0)  # (index, requests counted in it)
        self._per_job: dict[str | None, int] = {}
        self._listener: _Listener | None = None
        self._loop: threading.Thread | None = None

    # -- what tests read ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._listener is not None, "the server is not started"
        return f"http://127.0.0.1:{self._listener.server_address[1]}"

    @property
    def requests(self) -> int:
        """How many requests have been received so far."""
        with self._lock:
            return len(self.seen)

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.seen]

    def count(self, status: int) -> int:
        """How many answers with this status were sent."""
        with self._lock:
            return self.statuses.count(status)

    # -- start and stop -------------------------------------------------------------------------
    def start(self) -> HostileServer:
        self._listener = _Listener(self)
        self._loop = threading.Thread(
            target=self._listener.serve_forever, args=(0.05,), name="hostile-listener", daemon=True
        )
        _START(self._loop)
        return self

    def stop(self) -> None:
        """Stop at once: no more accepts, every client socket shut, threads joined briefly."""
        self._stop.set()
        if self._listener is not None:
            self._listener.shutdown()
            self._listener.server_close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        deadline = time.monotonic() + 2.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None and self.errors:
            raise RuntimeError("the HostileServer or its handler raised") from self.errors[0]

    # -- one connection -------------------------------------------------------------------------
    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.append(thread)

    def _serve_connection(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return
            self._sockets.add(sock)
        reader = sock.makefile("rb")
        try:
            while not self._stop.is_set():
                request = self._read_request(reader)
                if request is None:
                    return
                answer = self._answer_for(request)
                if answer is None or not self._send(sock, request, answer):
                    return
        except OSError:
            pass  # the client went away, or stop() shut the socket
        except Exception as exc:  # a bug here, or a body iterator that raised: kept, not printed
            with self._lock:
                self.errors.append(exc)
        finally:
            with self._lock:
                self._sockets.discard(sock)
            for closable in (reader, sock):
                with contextlib.suppress(OSError):
                    closable.close()

    def _read_request(self, reader) -> Request | None:
        head = b""
        while True:
            line = reader.readline(_MAX_HEAD)
            if not line:
                return None  # closed, possibly mid-request
            head += line
            if len(head) > _MAX_HEAD:
                return None
            if line in (b"\r\n", b"\n"):
                if head.strip():
                    break
                head = b""  # stray blank lines between requests
        first, *lines = head.decode("iso-8859-1").split("\r\n")
        parts = first.split()
        if len(parts) != 3:
            return None
        method, target, _version = parts
        headers: dict[str, str] = {}
        for line in lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "0")
        if length.isdigit() and int(length):
            reader.read(int(length))
        path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
        job_id = path[len(_JOB_PATH) :] if path.startswith(_JOB_PATH) else None
        with self._lock:
            attempt = self._per_job[job_id] = self._per_job.get(job_id, 0) + 1
            request = Request(
                len(self.seen) + 1, attempt, method, target, path, headers, job_id, time.time()
            )
            self.seen.append(request)
        return request

    def _answer_for(self, request: Request) -> Answer | None:
        try:
            answer = self.handler(request)
        except Exception as exc:  # kept for __exit__; the client sees a dropped connection
            with self._lock:
                self.errors.append(exc)
            return None
        if self.rate_limit is not None:
            answer = self._limit(answer)
        return answer

    def _limit(self, answer: Answer) -> Answer:
        limit, window = self.rate_limit  # type: ignore[misc]
        with self._lock:
            now = self.clock.time()
            index = max(int(now // window), self._window[0])  # windows never go back
            used = self._window[1] + 1 if index == self._window[0] else 1
            self._window = (index, used)
        reset = (index + 1) * window
        reset_header = int(reset) if float(reset).is_integer() else math.ceil(reset)
        date = answer.header("Date")
        if used > limit:
            answer = error_answer(
                429,
                "rate_limit_exceeded",
                f"Exceeded rate limit of {limit} in {window}_seconds",
                headers=[("Retry-After", max(1, math.ceil(reset - now)))],
            )
            if date is not None:
                answer = answer.with_headers(("Date", date))
            remaining = 0
        else:
            remaining = limit - used
        present = {
            n
            for n in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
            if answer.header(n) is not None
        }
        extra = [
            (n, v)
            for n, v in rate_limit_headers(limit, remaining, reset_header)
            if n not in present
        ]
        if date is None:
            extra.append(("Date", http_date(now)))
        return replace(answer, headers=[*answer.headers, *extra])

    def _send(self, sock: socket.socket, request: Request, answer: Answer) -> bool:
        """Send the answer. True when the connection stays open for the next request."""
        if answer.wait and self._stop.wait(answer.wait):
            return False
        if answer.hang_up:
            self._record(0)
            return False
        if answer.raw is not None:
            self._record(0)
            sock.sendall(answer.raw)
            return False
        whole = isinstance(answer.body, bytes)
        close = (
            answer.close
            or (not whole and not answer.chunked)
            or request.headers.get("connection", "").lower() == "close"
        )
        names = {_bytes(k).lower() for k, _ in answer.headers}
        headers = list(answer.headers)
        if b"date" not in names:
            headers.append(("Date", http_date()))
        if answer.chunked and b"transfer-encoding" not in names:
            headers.append(("Transfer-Encoding", "chunked"))
        elif whole and not answer.chunked and b"content-length" not in names:
            headers.append(("Content-Length", len(answer.body)))  # type: ignore[arg-type]
        if close and b"connection" not in names:
            headers.append(("Connection", "close"))
        line = answer.status_line
        if line is None:
            reason = answer.reason
            if not reason:
                with contextlib.suppress(ValueError):
                    reason = http.HTTPStatus(answer.status).phrase
            line = f"HTTP/1.1 {answer.status} {reason}\r\n".encode()
        head = line + b"".join(_bytes(k) + b": " + _bytes(v) + b"\r\n" for k, v in headers)
        self._record(answer.status)
        sock.sendall(head + b"\r\n")
        for chunk in self._pieces(answer):
            if answer.delay and self._stop.wait(answer.delay):
                return False
            if self._stop.is_set():
                return False
            if answer.chunked:
                if not chunk:
                    continue  # an empty chunk would end the body
                chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            sock.sendall(chunk)
        if answer.chunked:
            sock.sendall(b"0\r\n\r\n")
        return not close

    @staticmethod
    def _pieces(answer: Answer) -> Iterable[bytes]:
        body = answer.body
        if isinstance(body, bytes):
            size = answer.piece_size or len(body) or 1
            return (body[i : i + size] for i in range(0, len(body), size))
        return body

    def _record(self, status: int) -> None:
        with self._lock:
            self.statuses.append(status)
