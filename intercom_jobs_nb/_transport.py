"""Transport: one job's status over HTTP, with retries, turned into one `Row`.

Each worker thread owns a `Connection`: one keep-alive connection of the standard library's
`http.client` (the headers encoded once per client), or, through a proxy from the environment, a
urllib3 `ProxyManager` pool. On urllib3 (which wraps http.client) a job cost about 1.5 times
the client CPU, on requests about 3.4 times (``benchmarks/bench_throughput.py``; the README's
"Where the CPU goes"). Nothing a server sends is trusted:

- an answer is bounded in size (`MAX_BODY` bytes after gzip/deflate decoding, checked while
  reading, so a compression bomb or an endless chunked stream is cut off) and in time: the
  run's `Watchdog` cuts a connection whose whole answer took longer than ``timeout``, so a server
  dripping one byte at a time gets a ``timeout`` row, not a row after minutes;
- JSON is parsed defensively (a body nested a million levels deep is ``invalid_response``), every
  field is type- and length-checked, and the answer must be for the job asked;
- redirects are never followed (the token must not travel to another host), a loopback base URL
  never goes through a proxy, certificates and host names are checked (against the CAs `trust`
  reads: requests' variables, then OpenSSL's, then certifi), and exception text is scrubbed of
  the token.

Whether a request may have reached the server is decided here, once: a failure while
connecting (TCP, DNS, the proxy's CONNECT tunnel, the TLS handshake) is ``sent=False`` on both
paths; anything after is ambiguous. A certificate that does not verify is a configuration
problem (``TransportFailure.configuration``), never retried.

Where a change goes: a new kind of answer is a branch of `read_job`; what is retried, and how
often, is `ask` (the one retry loop, of reads and enqueues alike) and its `Policy`; what counts
as transient is ``codes.is_transient``; what the environment may set (proxy, CAs) is
`check_connection`. This module is the network; ``_transports.py`` is the interface a run sends
through, and `MockTransport`.
"""

from __future__ import annotations

import contextlib
import email.errors
import functools
import http.client
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import urllib3
from requests.utils import get_environ_proxies, prepend_scheme_if_needed
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.wait import wait_for_read

from . import _codes as C
from . import _errors as E
from ._clock import SYSTEM, Clock
from ._ids import check_job_id
from ._options import Options, is_loopback
from ._pacing import BLOCKED, STOPPED, Pacer
from ._rows import STATUSES, Row, error_row, job_row

__all__ = [
    "TransportFailure",
    "Answer",
    "error_list",
    "fatal_for",
    "read_error",
    "parse_json",
    "text_field",
    "MAX_MESSAGE",
    "Connection",
    "Channel",
    "Watchdog",
    "Stopped",
    "Fatal",
    "fetch_row",
    "identify",
    "ask",
    "Policy",
    "READ",
    "check_connection",
    "route",
    "Route",
    "trust",
    "Trust",
    "CA_HINT",
    "Report",
    "read_job",
    "MAX_BODY",
    "backoff",
]

MAX_BODY = 1_000_000  # bytes of a decoded answer; a job status is a few hundred
MAX_FIELD = 2048  # characters of one field of a job (a URL, an id)
MAX_MESSAGE = 500  # characters of an error message kept
MALFORMED_TRIES = 2  # a malformed answer is asked for at most this many times
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
WATCHDOG_TICK = 0.05  # seconds between two looks at the deadlines
_READ = 65536
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Interned values: 100,000 rows share these strings instead of holding a copy each.
_INTERN: dict[Any, Any] = {s: s for s in (*STATUSES, "ticket")}
STATUS_PATH = "/jobs/status/"
ME_PATH = "/me"


class Stopped(Exception):
    """The run is stopping; the worker drops the job it holds."""


TOKEN_HINT = "; check INTERCOM_TOKEN or token=, and the region"  # after a rejected token


class Fatal(Exception):
    """An answer that stops the whole run (bad token, bad API version)."""

    def __init__(
        self, kind: type[E.RunAbortedError], message: str, code: str, http_status: int
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.workspace: str | None = None  # set by a run of many: whose answer it was

    def aborted(self) -> E.RunAbortedError:
        """The exception that ends the run (naming the workspace, in a run of many, whose
        token is then checked in ``tokens=``)."""
        message = str(self)
        if self.workspace is not None:
            message = message.replace(TOKEN_HINT, "; check its token in tokens=, and the region")
            message = f"workspace {self.workspace!r}: {message}"
        return self.kind(
            message, code=self.code, http_status=self.http_status, workspace=self.workspace
        )


class TransportFailure(Exception):
    """No usable answer: ``code`` is ``timeout`` or ``connection_error``.

    ``sent`` is False when the request certainly never reached the server (connecting, the
    proxy's tunnel or the TLS handshake failed): resending it cannot make anything twice.
    ``configuration`` is True when asking again cannot help, because the failure is this
    machine's setting, not a passing state of the network: a certificate that does not verify
    against the CA bundle in use. Retry loops never retry it; the run engine ends the run.
    """

    def __init__(
        self, code: str, message: str, *, sent: bool = True, configuration: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sent = sent
        self.configuration = configuration


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes | None  # None when ``problem`` says why there is none
    problem: str | None  # too large, undecodable: the answer is invalid
    received_at: float


# -- deadlines ------------------------------------------------------------------------------------


class _Slot:
    """One worker's request in flight: its connection and the moment its whole answer is due.

    The connection is held by a weak reference: a client dropped without ``close`` (the watchdog
    outlives it) still has its connection closed when it is collected. Its ``sock`` is read
    when the watchdog cuts, so the cut reaches the socket of the moment: the TCP connection,
    a proxy's tunnel or the TLS socket."""

    __slots__ = ("_conn", "_lock", "deadline", "expired")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: weakref.ref[http.client.HTTPConnection] | None = None
        self.deadline: float | None = None
        self.expired = False

    def arm(self, seconds: float) -> None:
        with self._lock:
            self.deadline = time.monotonic() + seconds
            self.expired = False

    def disarm(self) -> None:
        with self._lock:
            self.deadline = None

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = weakref.ref(conn)

    def check(self, now: float) -> None:
        if self.deadline is None or now < self.deadline:
            return
        with self._lock:
            if self.deadline is not None and now >= self.deadline:
                self.deadline = None
                self.expired = True
                self._cut()

    def cut(self) -> None:
        with self._lock:
            if self.deadline is not None:
                self.expired = True
                self._cut()

    def _cut(self) -> None:
        # shutdown() wakes the thread blocked in recv. The plain socket's own method, even on
        # a TLS socket (same descriptor): ssl's would tear down its state under the reader.
        # Not a socket: none yet (connecting), or urllib3's TLS inside an https:// proxy's
        # TLS tunnel, where the read timeout alone bounds each read.
        conn = None if self._conn is None else self._conn()
        sock = None if conn is None else conn.sock
        if isinstance(sock, socket.socket):  # a closed socket raises OSError here
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """One thread per run that cuts the connection of any request past its deadline.

    Socket timeouts bound each read, not the answer: a server sending a byte every half second
    would never trip them. The watchdog looks at every worker's deadline a few dozen times a
    second and shuts the socket down, which the worker sees as a ``timeout``.
    """

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="intercom-jobs-watchdog", daemon=True
        )
        self._thread.start()

    def slot(self) -> _Slot:
        slot = _Slot()
        with self._lock:
            self._slots.append(slot)
        return slot

    def cut_all(self) -> None:
        """Cut every request in flight (the run is stopping)."""
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            slot.cut()

    def close(self) -> None:
        self._closed.set()

    def _loop(self) -> None:
        while not self._closed.wait(WATCHDOG_TICK):
            now = time.monotonic()
            with self._lock:
                slots = list(self._slots)
            for slot in slots:
                slot.check(now)


_current = threading.local()  # the slot of the worker running in this thread


def _watched(cls: type[HTTPConnection]) -> type[HTTPConnection]:
    class Watched(cls):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            # Everything before the request's first byte: the TCP connection (to the proxy),
            # the proxy's CONNECT tunnel and the TLS handshake. urllib3 reports a tunnel the
            # proxy refused (407, 503) or closed as a ProtocolError("Connection aborted."),
            # the same as a connection broken after the request was written; marked here, a
            # failure to connect is known for what it is: nothing was sent.
            slot = getattr(_current, "slot", None)
            if slot is not None:  # the watchdog cuts whatever socket this connection has then
                slot.attach(self)
            try:
                super().connect()
            except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                raise _Unsent(exc) from exc

    Watched.__name__ = f"Watched{cls.__name__}"
    return Watched


_WATCHED_HTTP = _watched(HTTPConnection)
_WATCHED_HTTPS = _watched(HTTPSConnection)


# The answer is http.client's own `HTTPResponse` (public methods only: no copy of its code to
# drift from CPython's), with its bounds on the header block: 100 lines of at most 64 KiB
# (Python 3.15 lets a connection set the count). It skips "100 Continue" answers; newer
# Pythons stop after a bounded number of them, and on any Python the watchdog's deadline ends
# an endless stream of them.


class _Direct(http.client.HTTPConnection):
    """A plain-HTTP connection; failing to connect is `_Unsent`."""

    def connect(self) -> None:
        try:
            super().connect()
        except OSError as exc:
            raise _Unsent(exc) from exc


class _DirectTLS(http.client.HTTPSConnection):
    """A TLS connection whose handshake the worker's `_Slot` can cut: the socket is wrapped
    before the handshake, so ``sock`` is the TLS socket while it runs (wrapping detaches the
    plain one)."""

    def __init__(
        self, host: str, port: int | None, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.tls = context  # our own reference: http.client keeps its copy private
        self.hostname = host

    def connect(self) -> None:
        try:
            http.client.HTTPConnection.connect(self)
            sock = self.tls.wrap_socket(
                self.sock, server_hostname=self.hostname, do_handshake_on_connect=False
            )
            self.sock = sock
            sock.do_handshake()
        except OSError as exc:  # ssl.SSLError included: nothing was sent
            raise _Unsent(exc) from exc


class Trust(NamedTuple):
    """The CAs a server's certificate is checked against, and where that setting comes from."""

    cafile: str | None
    capath: str | None
    source: str  # the variable that chose them ("certifi" when none did), for messages


_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # requests': a file or a folder
CA_HINT = "set REQUESTS_CA_BUNDLE or SSL_CERT_FILE to a CA bundle (PEM) that holds its CA"


def trust() -> Trust:
    """The CAs of this machine's settings, in the order the tools a user knows read them:
    ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE`` (requests'; a file or a folder), else
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` (OpenSSL's, which Python's own default context and
    httpx read), else certifi (requests' bundle).

    Raises:
        ConfigurationError: a variable names a path that is not there. Ignoring it would check
            certificates against other CAs than the user chose; every request would fail with
            a message about the certificate, not about the variable.
    """
    env = os.environ
    for name in _CA_VARIABLES:
        path = env.get(name)
        if path:
            if os.path.isdir(path):
                return Trust(None, path, name)
            if os.path.isfile(path):
                return Trust(path, None, name)
            raise E.ConfigurationError(
                f"{name} is {path!r}, which is neither a file nor a folder: point it at a CA "
                "bundle (a PEM file), or unset it to use the default CAs"
            )
    cafile = env.get("SSL_CERT_FILE") or None
    capath = env.get("SSL_CERT_DIR") or None
    if cafile is not None and not os.path.isfile(cafile):
        raise E.ConfigurationError(
            f"SSL_CERT_FILE is {cafile!r}, which is not a file: point it at a CA bundle (a PEM "
            "file), or unset it to use the default CAs"
        )
    if capath is not None and not all(os.path.isdir(p) for p in capath.split(os.pathsep) if p):
        raise E.ConfigurationError(
            f"SSL_CERT_DIR is {capath!r}, which is not a folder (or a list of folders): point "
            "it at a folder of CA certificates, or unset it to use the default CAs"
        )
    if cafile is not None or capath is not None:
        source = " and ".join(
            name for name, value in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if value
        )
        return Trust(cafile, capath, source)
    try:
        import certifi  # requests' own CA bundle

        return Trust(certifi.where(), None, "certifi")
    except ImportError:  # pragma: no cover - requests depends on certifi
        return Trust(None, None, "the system's default CAs")


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None, source: str) -> ssl.SSLContext:
    """Certificates and host names checked (the default context), against the CAs of `trust`.
    One per bundle: loading the CAs costs milliseconds.

    Raises:
        ConfigurationError: the bundle cannot be read, or holds no certificate.
    """
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ValueError) as exc:  # ssl.SSLError: no certificate in the file
        raise E.ConfigurationError(
            f"the CA certificates that {source} names cannot be loaded ({exc}): point it at a "
            "CA bundle (a PEM file), or unset it"
        ) from None


class Route(NamedTuple):
    """How a connection to a base URL goes: directly, or through the environment's proxy."""

    proxy: str | None  # the proxy's URL (it may hold credentials: never shown)
    variable: str | None  # the environment variable that named it


def _proxy_variable(scheme: str) -> str:
    """The variable a proxy for ``scheme`` came from, in urllib's order (lower case first)."""
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            return name
    return f"{scheme.upper()}_PROXY"  # pragma: no cover - get_environ_proxies found one


def route(base_url: str) -> Route:
    """The environment's proxy for ``base_url`` (requests' reading of ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``...); never one for loopback (the token would travel to the
    proxy in clear over plain http)."""
    parts = urlsplit(base_url)
    if is_loopback(parts.hostname or ""):
        return Route(None, None)
    proxies = get_environ_proxies(base_url)
    proxy = proxies.get(parts.scheme) or proxies.get("all") or None
    if not proxy:
        return Route(None, None)
    return Route(proxy, _proxy_variable(parts.scheme))


#: requests' own rule ("proxy.example:3128" means http://proxy.example:3128), typed: requests
#: ships no annotations.
_with_scheme = cast(Callable[[str, str], str], prepend_scheme_if_needed)


def _proxy_manager(way: Route, **kw: Any) -> urllib3.ProxyManager:
    """urllib3's pool manager for the route's proxy.

    Raises:
        ConfigurationError: the proxy's URL is malformed or of a scheme urllib3 cannot use
            (``socks5://``: requests needs PySocks for it, and this client does not use it).
    """
    name = way.variable
    try:
        # As requests does: "proxy.example:3128" means an http:// proxy.
        proxy = _with_scheme(way.proxy or "", "http")
        host = urlsplit(proxy).hostname
        manager = urllib3.ProxyManager(proxy, num_pools=1, **kw)
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        # The URL itself is not shown: it may carry the proxy's password.
        raise E.ConfigurationError(
            f"the proxy that {name} names cannot be used ({type(exc).__name__}: "
            f"{_no_credentials(str(exc), way.proxy)}): set {name} to an http:// or https:// "
            "proxy URL, or unset it"
        ) from None
    if not host:
        raise E.ConfigurationError(
            f"the proxy that {name} names has no host: set {name} to an http:// or https:// "
            "proxy URL, or unset it"
        )
    return manager


def _no_credentials(text: str, url: str | None) -> str:
    """``text`` without the user and password of ``url``, if it has them (read by hand: the
    URL may be too malformed for urlsplit)."""
    userinfo = (url or "").partition("://")[2].split("/", 1)[0].rpartition("@")[0]
    return text.replace(userinfo, "***") if userinfo else text


def check_connection(options: Options) -> Route:
    """Check, before any request, what the environment says about connecting to
    ``options.base_url``: its proxy, and for https the CA bundle. A mistake there is a
    `ConfigurationError` naming the variable, raised once at the start of a run, not a row per
    job (nor a crash in every worker).

    Raises:
        ConfigurationError: a proxy that cannot be used, or CAs that cannot be loaded.
    """
    way = route(options.base_url)
    if way.proxy is not None:
        _proxy_manager(way).clear()
    if urlsplit(options.base_url).scheme == "https":
        _tls_context(*trust())
    return way


class _Headers(dict[str, str]):
    """An answer's headers, read case-insensitively (keys kept lower-case); a header sent
    twice is its values joined with ", ", as urllib3 does."""

    @classmethod
    def of(cls, items: Iterable[tuple[str, str]]) -> _Headers:
        """From http.client's header lines, a folded value unfolded (RFC 9112 5.2)."""
        found = cls()
        for name, value in items:
            key = name.lower()
            if "\n" in value:
                value = " ".join(part.strip() for part in value.splitlines())
            seen = dict.get(found, key)
            dict.__setitem__(found, key, value if seen is None else f"{seen}, {value}")
        return found

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


Report = Callable[["TransportFailure | None"], None]  # a request's outcome: None, answered


class Channel(Protocol):
    """A worker's way to send one request at a time: the network's `Connection`, or a
    ``transports.Routed`` to the options' ``transport``."""

    options: Options

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer: ...

    def close(self) -> None: ...


class Connection:
    """One worker's connection to Intercom over the network. Create it in the thread that
    uses it.

    Without a proxy (always so for loopback) the connection is the standard library's
    `http.client`, kept alive, with the request's headers encoded once: the leanest of the
    standard clients (urllib3 wraps it). Through a proxy from the environment it is a urllib3
    `ProxyManager` pool (CONNECT tunnels, proxy credentials).

    ``report``, if given, hears the outcome of every request: None when it was answered (any
    status), else its `TransportFailure`. The run engine reads it to end a run that cannot
    reach Intercom at all (see ``engine.Reach``); the client itself decides nothing from it.

    Raises:
        ConfigurationError: the environment's proxy or CA bundle cannot be used.
    """

    def __init__(
        self,
        options: Options,
        watchdog: Watchdog,
        report: Report | None = None,
        *,
        clock: Clock = SYSTEM,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.clock = clock  # stamps each answer's received_at, on the run's clock
        self._report = report
        self._slot = watchdog.slot()
        _current.slot = self._slot
        parts = urlsplit(options.base_url)
        self._prefix = parts.path.rstrip("/")
        # Kept on the object, not in locals: a traceback with locals must not show the token.
        # ``headers``: a request's own (`HTTPTransport`), else the options' (the token's included).
        self._headers = dict(headers) if headers is not None else options.headers()
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        # Encoded once (Options checked the token can be sent): http.client takes bytes as is.
        self._header_lines = [
            (name.encode("ascii"), value.encode("latin-1")) for name, value in self._headers.items()
        ]
        self._pool: Any = None
        self._conn: http.client.HTTPConnection | None = None
        self._trust = trust() if parts.scheme == "https" else None
        way = route(options.base_url)
        if way.proxy is None:
            conn: http.client.HTTPConnection
            if self._trust is not None:
                conn = _DirectTLS(
                    parts.hostname or "", parts.port, options.timeout, _tls_context(*self._trust)
                )
            else:
                conn = _Direct(parts.hostname or "", parts.port, timeout=options.timeout)
            self._conn = conn
            self._slot.attach(conn)
            # A client dropped without close() (as urllib3 does for its pools): the server is
            # not left holding a connection nobody will use.
            weakref.finalize(self, conn.close)
            return
        self._timeout = urllib3.Timeout(connect=options.timeout, read=options.timeout)
        kw: dict[str, Any] = {
            "maxsize": 1,
            "block": False,
            "retries": False,
            "timeout": self._timeout,
        }
        if self._trust is not None:
            _tls_context(*self._trust)  # the same check of the CAs as without a proxy
            kw.update(
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._trust.cafile,
                ca_cert_dir=self._trust.capath,
            )
        manager = _proxy_manager(way, **kw)
        pool = manager.connection_from_host(parts.hostname, parts.port, parts.scheme)
        pool.ConnectionCls = _WATCHED_HTTPS if parts.scheme == "https" else _WATCHED_HTTP
        self._pool = pool

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._pool is not None:
            self._pool.close()

    def get(self, path: str) -> Answer:
        """GET once. Raises `TransportFailure` when there is no usable answer."""
        return self.request("GET", path)

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        """Ask once (a JSON ``body`` for a POST). Raises `TransportFailure` when there is no
        usable answer; its ``sent`` says whether the request may have reached the server."""
        report = self._report
        try:
            conn = self._conn
            if conn is None:
                answer = self._request_pooled(method, path, body)
            else:
                answer = self._request_direct(conn, method, path, body)
        except TransportFailure as failure:
            if report is not None:
                report(failure)
            raise
        if report is not None:
            report(None)
        return answer

    def _request_direct(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None
    ) -> Answer:
        slot = self._slot
        slot.arm(self.options.timeout)
        whole = False
        try:
            sock = conn.sock
            if sock is not None and _dropped(sock):  # the server closed it while idle
                conn.close()
            conn.putrequest(method, self._prefix + path, skip_accept_encoding=True)
            for name, value in self._header_lines:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)  # connects first if need be (_Unsent when that fails)
            response = conn.getresponse()
            headers = _Headers.of(response.msg.items())
            status = response.status
            content: bytes | None = None
            problem: str | None = _HEADERS_CUT
            if not _cut_short(response.msg):
                content, problem = _read_body(status, headers, response.read, slot)
            # An interim (1xx) answer taken for the final one: what follows is not ours to read.
            whole = problem is None and status >= 200
            return Answer(status, headers, content, problem, self.clock.time())
        except Exception as exc:
            if slot.expired or isinstance(exc, NETWORK_ERRORS):  # expired: the watchdog cut it
                raise self._failure(exc, slot) from None
            raise  # a bug, ours or a library's: the run ends with RunFailedError, not a row
        finally:
            slot.disarm()
            if not whole:  # a body cut short or unread leaves the connection unusable
                conn.close()

    def _request_pooled(self, method: str, path: str, body: bytes | None) -> Answer:
        slot = self._slot
        slot.arm(self.options.timeout)
        response = None
        whole = False
        try:
            response = self._pool.urlopen(
                method,
                self._prefix + path,
                body=body,
                headers=self._headers if body is None else self._json_headers,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
                timeout=self._timeout,
            )

            def read(size: int) -> bytes:
                data: bytes = response.read(size, decode_content=False)
                return data

            content, problem = _read_body(response.status, response.headers, read, slot)
            whole = problem is None
            return Answer(response.status, response.headers, content, problem, self.clock.time())
        except Exception as exc:
            if slot.expired or isinstance(exc, NETWORK_ERRORS):  # expired: the watchdog cut it
                raise self._failure(exc, slot) from None
            raise  # a bug, ours or a library's: the run ends with RunFailedError, not a row
        finally:
            slot.disarm()
            if response is not None:
                if not whole:  # a body cut short leaves the connection unusable
                    response.close()
                response.release_conn()

    def _failure(self, exc: BaseException, slot: _Slot) -> TransportFailure:
        # `_Unsent`: connecting failed (TCP or DNS, the proxy's tunnel, the TLS handshake), so
        # the request never left. urllib3 2's NewConnectionError (refused, DNS) subclasses
        # ConnectTimeoutError but is no timeout.
        unsent = isinstance(exc, (urllib3.exceptions.ConnectTimeoutError, _Unsent))
        cause = exc.cause if isinstance(exc, _Unsent) else exc
        timed_out = isinstance(
            cause, (urllib3.exceptions.TimeoutError, TimeoutError)
        ) and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        if slot.expired or timed_out:
            return TransportFailure(
                C.TIMEOUT,
                f"no complete answer within {self.options.timeout:g} s",
                sent=not unsent or slot.expired,
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return self._untrusted(cause)
        # Scrubbed before it is cut short: a cut could leave the token's first half.
        text = self.options.token.scrub(f"{type(cause).__name__}: {cause}")
        return TransportFailure(C.CONNECTION_ERROR, _clip(text, 300), sent=not unsent)

    def _untrusted(self, cause: ssl.SSLCertVerificationError) -> TransportFailure:
        """A certificate that does not verify: the CAs in use do not sign it (a proxy or
        firewall that inspects TLS, a private CA) or it is not the host's. Asking again meets
        the same certificate: a configuration problem, not a passing one."""
        why = getattr(cause, "verify_message", None) or str(cause)
        source = self._trust.source if self._trust is not None else "the default CAs"
        host = urlsplit(self.options.base_url).hostname
        return TransportFailure(
            C.CONNECTION_ERROR,
            _clip(
                f"the TLS certificate presented for {host} does not verify ({why}) against "
                f"the CAs of {source}; if a proxy or firewall inspects TLS, or the server "
                f"uses a private CA, {CA_HINT}",
                500,
            ),
            sent=False,
            configuration=True,
        )


class _Unsent(Exception):
    """The request was not sent: connecting (TCP, or the TLS handshake) failed."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


#: What a request may meet from the network or from the server's bytes: each becomes a
#: ``connection_error`` or ``timeout`` row. Anything else is a bug (ours, or of a library we
#: call, say after a Python upgrade) and ends the run as one (`RunFailedError`), never as a
#: "transient network fault" asked again for ever.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # sockets, DNS, TLS (ssl.SSLError), timeouts
    http.client.HTTPException,  # an answer that is not HTTP: a bad status line, a cut body...
    urllib3.exceptions.HTTPError,  # the same through a proxy, and its own protocol errors
    _Unsent,  # connecting failed (one of the above, before anything was sent)
)


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket was closed by the server (it is readable: EOF), as
    urllib3 checks before it uses a pooled connection again."""
    try:
        return wait_for_read(sock, timeout=0.0)
    except (OSError, ValueError):
        return True


_HEADERS_CUT = "a header line has no colon (the headers after it, its length maybe, were lost)"


def _cut_short(msg: http.client.HTTPMessage) -> bool:
    """Whether http.client stopped reading headers at a line with no colon (the email
    parser takes the rest of the block for a body): the answer's framing may be among them."""
    return bool(msg.defects) and any(
        isinstance(defect, email.errors.MissingHeaderBodySeparatorDefect) for defect in msg.defects
    )


def _read_body(
    status: int, headers: Mapping[str, str], read: Callable[[int], bytes], slot: _Slot
) -> tuple[bytes | None, str | None]:
    """The decoded body, at most `MAX_BODY` bytes; or (None, why) for an unusable one.

    Raises:
        http.client.IncompleteRead: the connection closed before ``Content-Length`` was met
            (http.client's ``read(n)`` then returns b"" as at the end; urllib3 raises itself).
    """
    encoding = headers.get("Content-Encoding")
    decoder: Any = None
    if encoding is not None:
        encoding = encoding.strip().lower()
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decoder = zlib.decompressobj(zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            return None, f"unsupported Content-Encoding {_clip(encoding, 40)!r}"
    declared = headers.get("Content-Length")
    length = None
    if declared is not None:
        declared = declared.strip()
        if declared.isascii() and declared.isdigit():
            length = int(declared)
            if length > MAX_BODY:
                return None, f"the answer is larger than {MAX_BODY:,} bytes"
            # RFC 9112 6.3: chunked framing, a 1xx, 204 or 304 has no body of that length.
            if "Transfer-Encoding" in headers or status < 200 or status in (204, 304):
                length = None
    parts: list[bytes] = []
    size = raw_size = 0
    try:
        while True:
            chunk = read(_READ)
            if not chunk:
                break
            raw_size += len(chunk)
            if decoder is not None:
                chunk = decoder.decompress(chunk, MAX_BODY + 1 - size)
            size += len(chunk)
            if size > MAX_BODY or raw_size > MAX_BODY:
                return None, f"the answer is larger than {MAX_BODY:,} bytes"
            parts.append(chunk)
            if slot.expired:
                raise TimeoutError
    except zlib.error:
        return None, f"the answer's {encoding} encoding is corrupt"
    if length is not None and raw_size < length:
        raise http.client.IncompleteRead(b"", length - raw_size)
    if len(parts) == 1:
        return parts[0], None
    return b"".join(parts), None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_json(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        return None


def _is_text(value: Any, limit: int = MAX_FIELD) -> bool:
    """Whether a JSON value is null or a string (or integer) of at most ``limit`` characters."""
    if value is None:
        return True
    if type(value) is str:  # the usual case, first
        return len(value) <= limit
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return len(value if isinstance(value, str) else str(value)) <= limit


def text_field(value: Any, limit: int = MAX_FIELD) -> str | None:
    """A JSON value as a bounded string; None for null and for anything unusable."""
    if value is None or not _is_text(value, limit):
        return None
    return value if isinstance(value, str) else str(value)


def _checked_text(value: Any) -> str | None:
    """`text_field` of a value `_is_text` has passed."""
    return value if value is None or type(value) is str else str(value)


def _intern(value: str | None) -> str | None:
    return _INTERN.get(value, value)


def error_list(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from an Intercom ``error.list`` body, where there is one."""
    if not isinstance(body, dict):
        return None, None, None
    request_id = text_field(body.get("request_id"), 128) or None
    code = message = None
    errs = body.get("errors")
    if isinstance(errs, list) and errs and isinstance(errs[0], dict):
        first = errs[0]
        raw_code, raw_message = first.get("code"), first.get("message")
        if isinstance(raw_code, str) and _CODE.fullmatch(raw_code):
            code = raw_code
        if isinstance(raw_message, str) and raw_message:
            message = _clip(raw_message, MAX_MESSAGE)
    return code, message, request_id


def _job_problem(job_id: str, body: Any) -> str | None:
    """Why a 200 body is not this job's status, or None."""
    if not isinstance(body, dict):
        return "the answer is not a JSON object"
    got = body.get("id")
    if got is None or got == "":
        return "the answer has no job id"
    if text_field(got, 128) != job_id:
        return f"the answer is for another job (id {_clip(repr(got), 40)})"
    status = body.get("status")
    if status is None:
        return "the answer has no status"
    if not isinstance(status, str) or status not in STATUSES:
        return f"unknown job status {_clip(repr(status), 40)}"
    for name in ("resource_type", "resource_id", "resource_url", "url"):
        if not _is_text(body.get(name)):
            return f"the answer's {name} is not a string of at most {MAX_FIELD} characters"
    return None


def fatal_for(status: int, code: str | None, message: str | None, options: Options) -> Fatal | None:
    """The run-stopping meaning of an error answer, if it has one (token or version rejected)."""
    if status == 401 or code in C.AUTH_CODES:
        return Fatal(
            E.AuthenticationError,
            f"Intercom rejected the token ({status} {code or C.UNAUTHORIZED}: "
            f"{message or 'no message'}){TOKEN_HINT}",
            code or C.UNAUTHORIZED,
            status,
        )
    if code == C.INTERCOM_VERSION_INVALID:
        return Fatal(
            E.ApiVersionError,
            f"Intercom rejected Intercom-Version {options.api_version!r}: {message or code}",
            code,
            status,
        )
    return None


def read_error(answer: Answer, body: Any, options: Options) -> tuple[str, str, str | None]:
    """(code, message, request_id) of an error answer: the one reading of every endpoint's
    errors, the message scrubbed of the token.

    Raises:
        Fatal: the answer stops the whole run (token or API version rejected).
    """
    code, message, request_id = error_list(body)
    if message is not None:  # a server may echo the request back, Authorization included
        message = options.token.scrub(message)
    fatal = fatal_for(answer.status, code, message, options)
    if fatal is not None:
        raise fatal
    header_id = text_field(answer.headers.get("X-Request-Id"), 128)
    message = message or f"HTTP {answer.status} from Intercom"
    return C.code_for(answer.status, code), message, request_id or header_id


def read_job(job_id: str, url: str, answer: Answer, attempts: int, options: Options) -> Row:
    """One answer about ``job_id`` as a row.

    Raises:
        Fatal: the answer stops the whole run (token or API version rejected).
    """
    status = answer.status
    request_id = text_field(answer.headers.get("X-Request-Id"), 128) or None
    if answer.problem is not None:
        return error_row(
            job_id,
            url,
            C.INVALID_RESPONSE,
            answer.problem,
            http_status=status,
            request_id=request_id,
            attempts=attempts,
        )
    body = parse_json(answer.body)
    if status == 200:
        problem = _job_problem(job_id, body)
        if problem is None:  # the fields are checked: null, or bounded strings or integers
            return job_row(
                job_id,
                _INTERN[body["status"]],
                resource_type=_intern(_checked_text(body.get("resource_type"))),
                resource_id=_checked_text(body.get("resource_id")),
                resource_url=_checked_text(body.get("resource_url")),
                url=_checked_text(body.get("url")) or url,
                request_id=request_id,
                attempts=attempts,
                fetched_at=answer.received_at,
            )
        if body is None:
            kind = _clip((answer.headers.get("Content-Type") or "?").split(";")[0], 60)
            problem = f"the answer is not JSON (Content-Type {kind})"
        return error_row(
            job_id,
            url,
            C.INVALID_RESPONSE,
            problem,
            http_status=status,
            request_id=request_id,
            attempts=attempts,
        )
    if status in _REDIRECTS:
        where = _clip(options.token.scrub(answer.headers.get("Location") or "?"), 200)
        return error_row(
            job_id,
            url,
            C.INVALID_RESPONSE,
            f"redirect ({status}) to {where!r} not followed",
            http_status=status,
            request_id=request_id,
            attempts=attempts,
        )
    code, message, request_id = read_error(answer, body, options)
    return error_row(
        job_id, url, code, message, http_status=status, request_id=request_id, attempts=attempts
    )


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s... capped, times U(0.5, 1)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


R = TypeVar("R")  # what a request's answer is read into: a job's `Row`, an enqueue's, a ticket's
Reader = Callable[[Answer, int], R]  # (answer, attempts) -> a row
Failed = Callable[["TransportFailure", int], R]  # (failure, attempts) -> a failure row
BLOCKED_MESSAGE = (
    "not sent: Intercom's rate limit allowed no request for several windows in a row; ask "
    "again later"
)


class Settled(Protocol):
    """What the engine and the retry loop need of any row: whether asking again may change it."""

    @property
    def final(self) -> bool: ...


class Readable(Settled, Protocol):
    """A row a read gives (a job's `Row`, a ticket's): final or not, and why not."""

    @property
    def error_code(self) -> str | None: ...


def _read_again(row: Readable) -> bool:
    """A status read is asked again when it failed for a passing reason (``final`` False and
    an error): a pending job is an answer, asked again by the next pass, not here."""
    return not row.final and row.error_code is not None


class Policy(NamedTuple):
    """What the one retry loop, `ask`, may send again.

    Attributes:
        resend: whether a request that may have reached the server may be sent again. A read
            (a job's status, a ticket, ``GET /me``): yes. A POST that creates a ticket: no,
            never twice; its failure after sending is then final (``unknown``), and a run
            stopping keeps the row the request got, so that the ledger records it.
        transient: whether a row is worth asking again (while the retries last).
    """

    resend: bool
    transient: Callable[[Any], bool]  # of the rows its calls' ``read`` gives


#: Status reads: anything that failed for a passing reason is asked again.
READ = Policy(resend=True, transient=_read_again)


def status_failure(key: str, url: str | None) -> Failed[Row]:
    """The row of a status read (a job's, ``GET /me``) that got no answer."""

    def failed(failure: TransportFailure, attempts: int) -> Row:
        return error_row(key, url, failure.code, failure.message, attempts=attempts)

    return failed


def ask(
    client: Channel,
    gate: Pacer,
    path: str,
    read: Reader[R],
    failed: Failed[R],
    policy: Policy,
    *,
    method: str = "GET",
    body: bytes | None = None,
) -> R:
    """Send ``method path`` until the row is final for ``policy``, or the retries are spent:
    the one retry loop of status reads, tickets, ``GET /me`` and enqueues.

    ``read`` turns an answer into a row, ``failed`` makes the row of a request that got no
    answer (from its `TransportFailure`, e.g. `status_failure`'s).

    429s wait for the window (the gate holds every worker); other transient failures back off
    with jitter; a malformed answer is asked for at most `MALFORMED_TRIES` times; a
    certificate that does not verify is never asked again. What is transient, and whether a
    request that may have been sent is sent again, is ``policy``'s.

    Raises:
        Stopped: the run is stopping (and, for a request that may not be resent, nothing was
            sent).
        Fatal: the answer stops the whole run.
    """
    retries = client.options.retries
    attempts = malformed = 0
    while True:
        go = gate.acquire()
        if go == STOPPED or gate.stop.is_set():  # stopped while acquiring: send nothing
            if go != STOPPED:
                gate.release()
            raise Stopped
        if go == BLOCKED:
            return failed(
                TransportFailure(C.RATE_LIMIT_EXCEEDED, BLOCKED_MESSAGE, sent=False), attempts
            )
        attempts += 1
        status: int | None = None
        row: R
        try:
            answer = client.request(method, path, body)
        except TransportFailure as failure:
            gate.release()
            if gate.stop.is_set() and policy.resend:  # cut by the run stopping: asked again
                raise Stopped from None
            row = failed(failure, attempts)
            if failure.configuration:  # asking again meets the same certificate
                return row
        else:
            gate.release(answer.headers, answer.received_at, answer.status)
            status = answer.status
            row = read(answer, attempts)
        if not policy.transient(row) or attempts > retries:
            return row
        if status == 429:
            continue  # the gate holds every worker until the window resets
        if getattr(row, "error_code", None) == C.INVALID_RESPONSE:
            malformed += 1
            if malformed >= MALFORMED_TRIES:
                return row
        if gate.clock.wait(gate.stop, backoff(attempts)):
            if policy.resend:
                raise Stopped
            return row


def fetch_row(client: Channel, gate: Pacer, job_id: str) -> Row:
    """One job's row (see `ask`)."""
    # Checked where the URL is made, whatever path the id came by (refresh of an edited frame,
    # the panel...): an id that is not a plain token would change where the token is sent.
    checked, problem = check_job_id(job_id)
    if problem or checked != job_id:
        return error_row(
            job_id,
            None,
            C.INVALID_JOB_ID,
            f"job id {job_id!r} {problem or 'has surrounding whitespace'}; it was not sent",
        )
    path = STATUS_PATH + job_id
    url = client.options.base_url + path

    def read(answer: Answer, attempts: int) -> Row:
        return read_job(job_id, url, answer, attempts, client.options)

    return ask(client, gate, path, read, status_failure(job_id, url), READ)


def identify(client: Channel, gate: Pacer) -> str:
    """The workspace (Intercom's ``app.id_code``) the token belongs to, from ``GET /me``.

    Raises:
        Fatal: the token was rejected.
        ConfigurationError: Intercom's answer does not say (after the retries).
    """
    options = client.options
    found: list[str] = []

    def read(answer: Answer, attempts: int) -> Row:
        if answer.status == 200 and answer.problem is None:
            body = parse_json(answer.body)
            app = body.get("app") if isinstance(body, dict) else None
            id_code = text_field(app.get("id_code"), 256) if isinstance(app, dict) else None
            if isinstance(id_code, str) and id_code:
                found.append(id_code)
                return job_row(
                    "me",
                    "success",
                    resource_type="workspace",
                    resource_id=id_code,
                    resource_url=None,
                    url=None,
                    request_id=None,
                    attempts=attempts,
                    fetched_at=answer.received_at,
                )
            return error_row(
                "me",
                None,
                C.INVALID_RESPONSE,
                "the answer names no workspace (app.id_code)",
                http_status=200,
                attempts=attempts,
            )
        return read_job("me", options.base_url + ME_PATH, answer, attempts, options)

    row = ask(client, gate, ME_PATH, read, status_failure("me", options.base_url + ME_PATH), READ)
    if not found and row.http_status is None and row.error_code in C.NO_ANSWER_CODES:
        raise E.UnreachableError(
            f"cannot reach Intercom at {options.base_url}: GET /me (asked to check which "
            f"workspace the file belongs to) got no answer ({row.error_code}: "
            f"{row.error_message}); nothing was sent",
            code=row.error_code,
        )
    if not found:
        raise E.ConfigurationError(
            "cannot tell which workspace the token belongs to, which a checkpoint needs: "
            f"GET /me answered {row.error_code}: {row.error_message}"
        )
    return found[0]
