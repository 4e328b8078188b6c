"""Network fixtures for tests: a guard that keeps the process on loopback, a CONNECT proxy and a
TLS front for a loopback server, all on 127.0.0.1 and standard library only.

- `LoopbackOnly` (fixture ``loopback_only`` in the tests that use it): ``socket.getaddrinfo``
  answers only for loopback names and addresses (anything else fails as a DNS failure would),
  and ``socket.socket.connect`` refuses any address outside loopback. So a proxy the client
  bypassed by mistake cannot make a lookup or a connection leave the machine. It also counts
  the connections made to each loopback address: the attempts a client made to a closed port.
- `TLSFront`: terminates TLS on a loopback port with a certificate for ``api.intercom.invalid``
  (and ``localhost``, ``127.0.0.1``) and relays the plain bytes to a backend (a `Sandbox`);
  it counts the handshakes begun and completed.
- `ConnectProxy`: an HTTP proxy that serves CONNECT only. It maps the host it is asked for to a
  loopback address (``routes``), and a ``policy(n)`` says what to do with the n-th CONNECT:
  ``"tunnel"``, a (host, port) to tunnel to instead, a status to refuse with (407, 503), or
  ``"close"`` (hang up before answering).

The certificates (EC P-256, valid until 2126) were made for these tests only with openssl: a CA
(`CA_PEM`, the bundle a test points ``REQUESTS_CA_BUNDLE`` at), a leaf it signed (`LEAF_PEM`,
`LEAF_KEY`), and a leaf of the same names signed by another CA, not in the bundle
(`UNTRUSTED_PEM`, `UNTRUSTED_KEY`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "CA_PEM",
    "LEAF_PEM",
    "LEAF_KEY",
    "UNTRUSTED_PEM",
    "UNTRUSTED_KEY",
    "HOST",
    "LoopbackOnly",
    "TLSFront",
    "ConnectProxy",
    "closed_port",
]

HOST = "api.intercom.invalid"  # a name no resolver knows (RFC 2606): only the proxy maps it

CA_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBrjCCAVOgAwIBAgIUec6AVSfdDHMdtuszMn2QDDeOaSgwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYaW50ZXJjb20tam9icy1uYiB0ZXN0IGNhMCAXDTI2MTIwNTE2
NDAxM1oYDzIxMjYxMTExMTY0MDEzWjAjMSEwHwYDVQQDDBhpbnRlcmNvbS1qb2Jz
LW5iIHRlc3QgY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARMqNgbOCofjWSB
STA9PYHIMknLQJcgdOoKCNQ6OCA2H4bESsoJkMXUjbc3tu/T9uINt/qsRAr5mgss
pauStKbMo2MwYTAfBgNVHSMEGDAWgBRdfarmJhCDDGQADCa+h0XPH50+kzAPBgNV
HRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUXX2q5iYQgwxk
AAwmvodFzx+dPpMwCgYIKoZIzj0EAwIDSQAwRgIhAO8v2wF+WVrQS/9f2c5Zj07s
Xyopf9maR7H1md4TVTH7AiEA7DNnupS7peTIEx+Hlyo8QrwodVlMnMQdkDKWHDLR
jfo=
-----END CERTIFICATE-----
"""
LEAF_PEM = b"""-----BEGIN CERTIFICATE-----
MIIB8DCCAZWgAwIBAgIUARZ2a/u6gov03N55b1afVXrMC2kwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYaW50ZXJjb20tam9icy1uYiB0ZXN0IGNhMCAXDTI2MTIwNTE2
NDAxNFoYDzIxMjYxMTExMTY0MDE0WjAfMR0wGwYDVQQDDBRhcGkuaW50ZXJjb20u
aW52YWxpZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGlB/MaQbzEmcT4v2zqd
XqIwg18eRtOHle9y/VBrLF+pJOY/sfWa3ZhuMHhEjPXg0rnFTEPY5BbOiAeuZ6Bu
9zyjgagwgaUwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAww
CgYIKwYBBQUHAwEwMAYDVR0RBCkwJ4IUYXBpLmludGVyY29tLmludmFsaWSCCWxv
Y2FsaG9zdIcEfwAAATAdBgNVHQ4EFgQU3neqWoWNjXrEqswdFlMlk48Ei9EwHwYD
VR0jBBgwFoAUXX2q5iYQgwxkAAwmvodFzx+dPpMwCgYIKoZIzj0EAwIDSQAwRgIh
AL60FpDpRwLWJu4bIxFJPAEjZoR+ghXTMTkHRwruW54hAiEA7XQgeAU5ZUIiJcZa
fGtTEtsLPF/SMymcqV2+MTBjpsg=
-----END CERTIFICATE-----
"""
LEAF_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqXCguLGOfBqrAgXF
xbb95/cghXDhTzrPWIUivavEYmihRANCAARpQfzGkG8xJnE+L9s6nV6iMINfHkbT
h5Xvcv1QayxfqSTmP7H1mt2YbjB4RIz14NK5xUxD2OQWzogHrmegbvc8
-----END PRIVATE KEY-----
"""
UNTRUSTED_PEM = b"""-----BEGIN CERTIFICATE-----
MIIB8jCCAZigAwIBAgIUI/HNptd2kUVxhynELQEO6EGBgygwCgYIKoZIzj0EAwIw
JjEkMCIGA1UEAwwbaW50ZXJjb20tam9icy1uYiB0ZXN0IG90aGVyMCAXDTI2MTIw
NTE2NDAxNFoYDzIxMjYxMTExMTY0MDE0WjAfMR0wGwYDVQQDDBRhcGkuaW50ZXJj
b20uaW52YWxpZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFvNIfHOknB+THcd
jkj8f+lW+idCSJSa31KxtJ9LSaIp5jD6rJkdrldGR8rXjcFOrWzC8a4tm51IRsAa
4gTmA2ujgagwgaUwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0l
BAwwCgYIKwYBBQUHAwEwMAYDVR0RBCkwJ4IUYXBpLmludGVyY29tLmludmFsaWSC
CWxvY2FsaG9zdIcEfwAAATAdBgNVHQ4EFgQUBAR+4yPUcAB1FUJGJmSyaBTmWTcw
HwYDVR0jBBgwFoAUpXOk8Kh1Nryslvtd2yMRwDIcDIYwCgYIKoZIzj0EAwIDSAAw
RQIgJ3NvyPVfW/zKg2ChciH+hPBOYtk+kCiL+NcZRMgpf5sCIQDkLzDMLrrfzOEO
PYWL2YDJetn0IXVM7QhLQTUBMgrZBA==
-----END CERTIFICATE-----
"""
UNTRUSTED_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSxzJUHvqJqHANd35
mrVYPw8g3/haH5YaBOyHKyjcuRahRANCAARbzSHxzpJwfkx3HY5I/H/pVvonQkiU
mt9SsbSfS0miKeYw+qyZHa5XRkfK143BTq1swvGuLZudSEbAGuIE5gNr
-----END PRIVATE KEY-----
"""


def closed_port() -> int:
    """A loopback port nobody listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class LoopbackOnly:
    """Keeps this process's lookups and connections on loopback (see the module)."""

    def __init__(self, monkeypatch) -> None:
        self.refused: list[str] = []  # names and addresses the guard turned away
        self.lookups: Counter[str] = Counter()  # names looked up (refused ones included)
        self.connects: Counter[tuple[str, int]] = Counter()  # loopback (host, port) connected
        self._lock = threading.Lock()
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            with guard._lock:
                guard.lookups[name] += 1
            if not _is_loopback(host):
                with guard._lock:
                    guard.refused.append(name)
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookup of {name!r}")
            return real_getaddrinfo(host, *args, **kwargs)

        def allowed(sock: socket.socket, address) -> bool:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return True  # a Unix socket or a socketpair: nothing leaves the machine
            host, port = address[0], address[1]
            if not _is_loopback(host):
                with guard._lock:
                    guard.refused.append(str(host))
                return False
            with guard._lock:
                guard.connects[(str(host), int(port))] += 1
            return True

        def connect(sock, address):
            if not allowed(sock, address):
                raise ConnectionRefusedError(f"test guard: no connection to {address!r}")
            return real_connect(sock, address)

        def connect_ex(sock, address):
            if not allowed(sock, address):
                return 111  # ECONNREFUSED
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    def attempts(self, port: int) -> int:
        """Connections (tried) to a loopback port."""
        with self._lock:
            return sum(n for (_, p), n in self.connects.items() if p == port)


def _relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes (TLS sockets too: their buffered
    plaintext is read before waiting on the socket again)."""
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        while not stop.is_set():
            ready = [(key.fileobj, key.data) for key, _ in sel.select(0.2)]
            for src in (a, b):
                if isinstance(src, ssl.SSLSocket) and src.pending():
                    ready.append((src, b if src is a else a))
            for src, dst in ready:
                try:
                    data = src.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    return


class _Listener:
    """A threaded accept loop on 127.0.0.1 that closes every socket it handed out on exit."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def keep(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
        return sock

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            self.keep(sock)
            threading.Thread(target=self._guarded, args=(sock,), daemon=True).start()

    def _guarded(self, sock: socket.socket) -> None:
        try:
            self.serve(sock)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def serve(self, sock: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._server.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()


class TLSFront(_Listener):
    """TLS on a loopback port, relayed in clear to ``backend`` (host, port).

    Attributes:
        handshakes: TLS handshakes begun (connections accepted).
        completed: handshakes that succeeded (the client trusted the certificate).
    """

    def __init__(self, backend: tuple[str, int], folder: Path, *, trusted: bool = True) -> None:
        cert, key = (LEAF_PEM, LEAF_KEY) if trusted else (UNTRUSTED_PEM, UNTRUSTED_KEY)
        name = "leaf" if trusted else "untrusted"
        (folder / f"{name}.pem").write_bytes(cert)
        (folder / f"{name}.key").write_bytes(key)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(folder / f"{name}.pem", folder / f"{name}.key")
        self.backend = backend
        self.completed = 0
        super().__init__()

    @property
    def handshakes(self) -> int:
        return self.accepted

    def serve(self, sock: socket.socket) -> None:
        tls = self.keep(self._context.wrap_socket(sock, server_side=True))
        with self._lock:
            self.completed += 1
        with socket.create_connection(self.backend) as plain:
            self.keep(plain)
            _relay(tls, plain, self.stop)


Policy = Callable[[int], "str | int | tuple[str, int]"]


class ConnectProxy(_Listener):
    """An HTTP proxy for CONNECT only (see the module).

    Args:
        routes: ``{"host:port": (loopback host, port)}``: where a CONNECT target goes. A
            target it does not know is answered 502 (the proxy never resolves a name).
        policy: what to do with the n-th CONNECT (1 for the first): ``"tunnel"``, a status to
            refuse with, or ``"close"``. Default: tunnel every one.

    Attributes:
        connects: every CONNECT target asked, in order; ``outcomes`` what was done with it.
    """

    def __init__(self, routes: dict[str, tuple[str, int]], policy: Policy | None = None) -> None:
        self.routes = routes
        self.policy = policy or (lambda n: "tunnel")
        self.connects: list[str] = []
        self.outcomes: list[str | int | tuple[str, int]] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tunnelled(self) -> int:
        with self._lock:
            return self.outcomes.count("tunnel")

    def refused(self) -> int:
        with self._lock:
            return len(self.outcomes) - self.outcomes.count("tunnel")

    def serve(self, sock: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data or len(head) > 65536:
                return
            head += data
        first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(first) != 3 or first[0] != "CONNECT":
            sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = first[1]
        with self._lock:
            self.connects.append(target)
            n = len(self.connects)
        what = self.policy(n)
        where = self.routes.get(target)
        if isinstance(what, tuple):
            what, where = "tunnel", what
        if what == "tunnel" and where is None:
            what = 502
        with self._lock:
            self.outcomes.append(what)
        if what == "close":
            return
        if what != "tunnel":
            assert isinstance(what, int)
            reason = {407: "Proxy Authentication Required", 503: "Service Unavailable"}.get(
                what, "Refused"
            )
            sock.sendall(
                f"HTTP/1.1 {what} {reason}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            return
        assert where is not None
        with socket.create_connection(where) as upstream:
            self.keep(upstream)
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(sock, upstream, self.stop)
