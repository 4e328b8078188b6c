"""Transports: where a request goes, as one small interface, and `MockTransport`.

A `Transport` takes a `Request` (method, URL, headers, body) and gives back the answer,
bounded (`transport.Answer`: status, headers, at most `transport.MAX_BODY` bytes of body), or
raises `transport.TransportFailure` when there is none (``timeout``, ``connection_error``). Every
run (`Client`, `fetch_jobs`, the panel...) sends through the ``transport=`` option:

- None, the default: the network (``_transport.py``: a kept-alive connection per worker thread,
  with a watchdog on each answer's time, proxies and CAs from the environment);
- `MockTransport(handler)`: answers from a plain function, as httpx's does: no socket, no
  server. Users test their notebook code with it; so do this package's tests where the network
  itself is not the point (``tests/test_client.py``, the panel's table, enqueue's resend rules).

Everything above the transport is the same whichever answers: pacing reads the rate-limit
headers of a mock's answers, retries retry them, rows read them. A run through a transport of
its own never shares a pacing gate with a run over the network (gates are per token and host).

Example:
    >>> import intercom_jobs_nb as ij
    >>> def intercom(request):
    ...     job_id = request.path.rsplit("/", 1)[-1]
    ...     return {"id": job_id, "status": "success", "resource_type": "ticket"}
    >>> with ij.Client(token="test", transport=ij.MockTransport(intercom)) as client:
    ...     df = client.fetch_jobs(["1", "2"])
    >>> df["status"].tolist()
    ['success', 'success']
"""

from __future__ import annotations

import json as _json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlsplit

from . import _codes as C
from ._clock import SYSTEM, Clock
from ._options import DEFAULT_TIMEOUT, Options, Secret
from ._transport import (
    MAX_BODY,
    Answer,
    Connection,
    Report,
    TransportFailure,
    Watchdog,
    _Headers,
)

__all__ = [
    "Request",
    "Response",
    "Transport",
    "HTTPTransport",
    "MockTransport",
    "Routed",
    "connect",
]


class Request(NamedTuple):
    """One request, as a transport receives it.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        url: the whole URL (the options' ``base_url`` and the path).
        headers: the request's headers (``Authorization`` holds the token).
        body: the JSON body of a POST, else None.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None

    @property
    def path(self) -> str:
        """The URL's path, e.g. ``/jobs/status/20``."""
        return urlsplit(self.url).path

    def json(self) -> Any:
        """The body read as JSON (None without one)."""
        return None if self.body is None else _json.loads(self.body)


class Response:
    """An answer a `MockTransport`'s handler gives: a status, headers, and a body given as
    ``json=`` (any JSON value), ``text=`` or ``content=`` (bytes).

    Example:
        >>> ij.Response(429, headers={"Retry-After": "1"})          # doctest: +SKIP
        >>> ij.Response(200, json={"id": "20", "status": "pending"})  # doctest: +SKIP
    """

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(
                f"a Response's status must be an HTTP status (100-599), got {status!r}"
            )
        found = _Headers({str(k).lower(): str(v) for k, v in (headers or {}).items()})
        if content is None and text is not None:
            content = text.encode()
        if content is None and json is not None:
            content = _json.dumps(json).encode()
            found.setdefault("content-type", "application/json")
        self.status = status
        self.headers = found
        self.content = content

    def __repr__(self) -> str:
        return f"<Response [{self.status}]>"


@runtime_checkable
class Transport(Protocol):
    """Where requests go: a request in, an answer out, bounded. It is called from many worker
    threads at once.

    ``handle`` returns the answer (its body at most `transport.MAX_BODY` bytes, else with a
    ``problem`` saying so), or raises `transport.TransportFailure` when there is none; any other
    exception is a bug, and ends the run with `RunFailedError`. ``close`` lets go of what the
    transport holds (`Client.close` calls it).
    """

    def handle(self, request: Request) -> Answer: ...

    def close(self) -> None: ...


class HTTPTransport:
    """The network as a `Transport`: what a run sends through when ``transport`` is None,
    given explicitly to wrap it (a transport of your own that records, delays or fails some
    requests, and hands the rest to this one).

    Each worker thread keeps one kept-alive connection per host and headers (the standard
    library's `http.client`; a urllib3 pool through a proxy from the environment), every answer
    bounded in size and, by a watchdog, in time (``timeout`` seconds for the whole answer),
    exactly as a run's own connections are. `close` closes them all (`Client.close` calls it).

    Example:
        >>> class Recording:                                         # doctest: +SKIP
        ...     def __init__(self):
        ...         self.network, self.paths = ij.HTTPTransport(), []
        ...     def handle(self, request):
        ...         self.paths.append(request.path)
        ...         return self.network.handle(request)
        ...     def close(self):
        ...         self.network.close()
        >>> with ij.Client(transport=Recording()) as client:         # doctest: +SKIP
        ...     df = client.fetch_jobs(ids)
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        Options.build(token="-", base_url="http://127.0.0.1", timeout=timeout)  # checks it
        self.timeout = float(timeout)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[Connection] = []
        self._watchdog: Watchdog | None = None

    def handle(self, request: Request) -> Answer:
        # Sent on this thread's connection to the request's host (made on first use); no usable
        # answer raises TransportFailure (timeout, connection_error), as the Protocol says.
        parts = urlsplit(request.url)
        # Content-Type (and Content-Length) are the connection's to set per request: a GET and
        # a POST with the same other headers share one connection.
        fixed = tuple((k, v) for k, v in request.headers.items() if k.lower() != "content-type")
        key = (parts.scheme, parts.netloc, fixed)
        made: dict[Any, Connection] | None = getattr(self._local, "made", None)
        if made is None:
            made = self._local.made = {}
        connection = made.get(key)
        if connection is None:
            connection = made[key] = self._connect(parts.scheme, parts.netloc, dict(fixed))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return connection.request(request.method, path, request.body)

    def _connect(self, scheme: str, netloc: str, headers: Mapping[str, str]) -> Connection:
        auth = headers.get("Authorization", "")
        token = Secret.wrap(auth.partition(" ")[2] or "-")  # to keep it out of failure messages
        assert token is not None
        options = Options(token=token, base_url=f"{scheme}://{netloc}", timeout=self.timeout)
        with self._lock:
            if self._watchdog is None:
                self._watchdog = Watchdog()
            watchdog = self._watchdog
        connection = Connection(options, watchdog, headers=headers)
        with self._lock:
            self._made.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection made, in any thread, and the watchdog."""
        with self._lock:
            made, self._made = self._made, []
            watchdog, self._watchdog = self._watchdog, None
        for connection in made:
            connection.close()
        if watchdog is not None:
            watchdog.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HTTPTransport(timeout={self.timeout:g})"


Handler = Callable[[Request], "Response | Mapping[str, Any] | Answer"]


class MockTransport:
    """A transport that answers from a function: ``handler(request)`` returns a `Response`,
    or a dict (a 200 with that JSON body).

    A handler that raises `TimeoutError` makes a ``timeout`` row, one that raises another
    `OSError` a ``connection_error`` row (`ConnectionRefusedError`: not sent, as a refused
    connection is), as the network's would; any other exception is a bug in the handler and ends
    the run with `RunFailedError` (``.df`` holds the rows so far). Answers are bounded like the
    network's. The handler is called from many threads at once: ``calls`` counts its calls.

    Example:
        >>> def intercom(request):
        ...     if request.path == "/me":
        ...         return {"app": {"id_code": "acme"}}
        ...     return ij.Response(404, json={"type": "error.list",
        ...                                   "errors": [{"code": "job_not_found"}]})
        >>> transport = ij.MockTransport(intercom)
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError("MockTransport(handler): handler must be a function of a request")
        self.handler = handler
        self.calls = 0
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Answer:
        with self._lock:
            self.calls += 1
        try:
            result = self.handler(request)
        except TransportFailure:
            raise
        except TimeoutError as exc:  # socket.timeout is TimeoutError
            raise TransportFailure(C.TIMEOUT, f"no complete answer ({_said(exc)})") from None
        except OSError as exc:
            unsent = isinstance(exc, (ConnectionRefusedError, socket.gaierror))
            raise TransportFailure(C.CONNECTION_ERROR, _said(exc), sent=not unsent) from None
        return _answer(result)

    def close(self) -> None:
        """Nothing to let go of."""

    def __repr__(self) -> str:
        return f"MockTransport({getattr(self.handler, '__name__', self.handler)!r})"


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _answer(result: Any) -> Answer:
    """A handler's result as a bounded `Answer`."""
    if isinstance(result, Answer):
        response = Response(result.status, content=result.body, headers=result.headers)
    elif isinstance(result, Response):
        response = result
    elif isinstance(result, Mapping):
        response = Response(200, json=dict(result))
    else:
        raise TypeError(
            f"a MockTransport handler must return an ij.Response or a dict, got "
            f"{type(result).__name__}"
        )
    body = response.content
    if body is not None and len(body) > MAX_BODY:
        return Answer(
            response.status,
            response.headers,
            None,
            f"the answer is larger than {MAX_BODY:,} bytes",
            time.time(),
        )
    return Answer(response.status, response.headers, body, None, time.time())


class Routed:
    """One worker's way to a `Transport` (what `connect` gives when ``transport=`` is set):
    the same calls as the network's `transport.Connection`, each request built with the
    options' URL and headers, its outcome reported, failures scrubbed of the token."""

    def __init__(
        self,
        transport: Transport,
        options: Any,
        report: Report | None = None,
        *,
        clock: Clock = SYSTEM,
    ) -> None:
        self.options = options
        self.clock = clock
        self._transport = transport
        self._report = report
        self._headers = options.headers()  # kept on the object: locals must not show the token
        self._json_headers = {**self._headers, "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        headers = self._headers if body is None else self._json_headers
        request = Request(method, self.options.base_url + path, headers, body)
        report = self._report
        try:
            answer = self._transport.handle(request)
        except TransportFailure as failure:
            scrubbed = TransportFailure(
                failure.code,
                self.options.token.scrub(failure.message),
                sent=failure.sent,
                configuration=failure.configuration,
            )
            if report is not None:
                report(scrubbed)
            raise scrubbed from None
        if report is not None:
            report(None)
        return answer._replace(received_at=self.clock.time())  # the run's time, not the mock's

    def close(self) -> None:
        """The transport is the client's: it is closed with it, not with a worker."""


def connect(
    options: Any, watchdog: Watchdog, report: Report | None = None, *, clock: Clock = SYSTEM
) -> Connection | Routed:
    """A worker's connection, made in the thread that uses it: to the network (a
    `transport.Connection`), or to the options' ``transport``; answers are stamped with
    ``clock`` (the run's, which its pacing gate reads)."""
    if options.transport is None:
        return Connection(options, watchdog, report, clock=clock)
    return Routed(options.transport, options, report, clock=clock)
