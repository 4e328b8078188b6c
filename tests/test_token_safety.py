"""The token: every entrance goes through one check, and the token is never printed or stored.

Entrances are ``token=`` of every public call, ``INTERCOM_TOKEN``, and the JobsPanel (given or
typed). Exits it must never take: exception text, verbose tracebacks, widget state, the panel's
message, a CSV export, a row's ``error_message``, and a proxy the environment names.
"""

from __future__ import annotations

import json
import socket
import threading
import traceback

import ipywidgets
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._rows import to_frame

WAIT = 20  # seconds a panel refresh may take at most before the test calls it stuck

# Distinctive, so a search of text, state or files finds nothing else.
SECRET = "secret-tok-123"
MALFORMED = ["to k", "tok\x00", "tök", "t€k"]
# The environment cannot hold a NUL byte: another control character stands in for it there.
MALFORMED_ENV = ["to k", "tok\x07", "tök", "t€k"]


@pytest.fixture
def tok_sandbox():
    """5 final jobs behind the token "tok"."""
    with ij.Sandbox(jobs=5, seed=0, pending_share=0.0, token="tok") as sb:
        yield sb


def shows(token: str, text: str) -> bool:
    """Whether ``text`` holds the token, as is or as a repr (or a repr of a repr) escapes it."""
    once = repr(token)[1:-1]
    return any(form in text for form in (token, once, repr(once)[1:-1]))


class RawServer:
    """A bare TCP server on loopback: reads each request's head, answers ``reply(head)``, closes.

    ``connections`` counts the connections accepted.
    """

    def __init__(self, reply=lambda head: b"HTTP/1.1 XYZ\r\n\r\n") -> None:
        self.reply = reply
        self.connections = 0
        self.heads: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # accept() wakes up to see the test is over
        self.port = self._sock.getsockname()[1]
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    self.heads.append(head)
                    conn.sendall(self.reply(head))
                except OSError:
                    pass


def echo_authorization(head: bytes, padding: int = 0) -> bytes:
    """A malformed status line that carries the request's Authorization line back."""
    lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization:")]
    return b"HTTP/1.1 XYZ " + b"p" * padding + b"".join(lines) + b"\r\n\r\n"


# -- surrounding whitespace is stripped ---------------------------------------------------------


@pytest.mark.parametrize("token", ["tok\n", "  tok  ", "\ttok\r\n"])
def test_surrounding_whitespace_of_a_token_is_stripped(tok_sandbox, token):
    df = ij.fetch_jobs(
        tok_sandbox.job_ids, token=token, base_url=tok_sandbox.base_url, progress=False
    )
    assert df["error_code"].isna().all()
    assert df["status"].isin(["success", "failed"]).all()


def test_a_trailing_newline_in_intercom_token_is_stripped(tok_sandbox, monkeypatch):
    monkeypatch.setenv("INTERCOM_TOKEN", "tok\n")
    df = ij.fetch_jobs(tok_sandbox.job_ids, base_url=tok_sandbox.base_url, progress=False)
    assert df["error_code"].isna().all()
    assert df["status"].isin(["success", "failed"]).all()


# -- anything else outside visible ASCII is refused, before a request, without an echo ----------


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_token_is_refused_before_any_request_without_echo(tok_sandbox, token):
    with pytest.raises(ij.ConfigurationError) as caught:
        ij.fetch_jobs(tok_sandbox.job_ids, token=token, base_url=tok_sandbox.base_url)
    assert tok_sandbox.stats["requests"] == 0
    assert not shows(token, str(caught.value))


@pytest.mark.parametrize("token", MALFORMED_ENV)
def test_a_malformed_intercom_token_is_refused_before_any_request_without_echo(
    tok_sandbox, monkeypatch, token
):
    monkeypatch.setenv("INTERCOM_TOKEN", token)
    with pytest.raises(ij.ConfigurationError) as caught:
        ij.fetch_jobs(tok_sandbox.job_ids, base_url=tok_sandbox.base_url)
    assert tok_sandbox.stats["requests"] == 0
    assert not shows(token, str(caught.value))
    assert "INTERCOM_TOKEN" in str(caught.value)


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_token_given_to_the_panel_is_refused_without_echo(tok_sandbox, token):
    with pytest.raises(ij.ConfigurationError) as caught:
        ij.JobsPanel(tok_sandbox.job_ids, base_url=tok_sandbox.base_url, token=token)
    assert tok_sandbox.stats["requests"] == 0
    assert not shows(token, str(caught.value))


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_token_typed_into_the_panel_is_a_message_without_echo(
    tok_sandbox, panel_of, token
):
    panel = panel_of(tok_sandbox)
    panel._on_message(panel, {"type": "refresh", "token": token}, [])  # what the page sends
    assert panel.wait(timeout=WAIT)
    assert "token" in panel.status
    assert not shows(token, panel.status)
    assert not shows(token, json.dumps(panel.get_state(), default=str))
    assert panel.df is None
    assert tok_sandbox.stats["requests"] == 0


# -- the panel: a given token works and is nowhere to be found afterwards -----------------------


def test_a_token_given_to_the_panel_works_and_stays_out_of_state_message_and_csv(
    panel_of, tmp_path
):
    token = "panel-given-T0ken-9f8e7d6c5b4a"
    with ij.Sandbox(jobs=30, seed=0, pending_share=0.2, token=token) as sb:
        panel = panel_of(sb, token=sb.token + "\n", export_path=tmp_path / "jobs.csv")
        panel._on_message(panel, {"type": "refresh", "token": ""}, [])  # a click on Refresh
        assert panel.wait(timeout=WAIT)
        assert panel.df["job_id"].tolist() == sb.job_ids
        assert panel.df["error_code"].isna().all()
        panel.refresh()  # the second refresh, from code
        assert panel.wait(timeout=WAIT)
        assert "refresh #2" in panel.status
        panel._on_message(panel, {"type": "export"}, [])
    assert panel.last_export == tmp_path / "jobs.csv"
    manager_state = json.dumps(ipywidgets.Widget.get_manager_state(), default=str)
    widget_states = json.dumps(panel.get_state(), default=str)
    assert panel.model_id in manager_state  # the panel is in what was searched
    assert token not in manager_state
    assert token not in widget_states
    assert token not in panel.status
    assert token not in repr(panel)
    assert token.encode() not in (tmp_path / "jobs.csv").read_bytes()


# -- verbose tracebacks: frames hold a Secret, never the string ---------------------------------


def frames(exc: BaseException):
    """Every frame of ``exc``'s traceback and of the exceptions chained to it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            yield tb.tb_frame
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__


def frame_named(exc: BaseException, name: str):
    return next(f for f in frames(exc) if f.f_code.co_name == name)


CALLS = {
    "fetch_jobs": lambda df: ij.fetch_jobs(["1001"], token=SECRET, region="nowhere"),
    "refresh": lambda df: ij.refresh(df, token=SECRET, region="nowhere"),
    "wait_for_jobs": lambda df: ij.wait_for_jobs(["1001"], token=SECRET, region="nowhere"),
    "fetch_job": lambda df: ij.fetch_job("1001", token=SECRET, region="nowhere"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_no_frame_of_a_verbose_traceback_holds_the_token(name):
    with pytest.raises(ij.ConfigurationError, match="region") as caught:
        CALLS[name](to_frame([]))
    for frame in frames(caught.value):
        for local, value in frame.f_locals.items():
            assert SECRET not in repr(value), f"{frame.f_code.co_name}: {local}"
    assert isinstance(frame_named(caught.value, name).f_locals["options"]["token"], ij.Secret)


def test_a_traceback_with_locals_of_a_rejected_token_does_not_show_it(final_sandbox):
    with pytest.raises(ij.AuthenticationError) as caught:
        ij.fetch_jobs(
            final_sandbox.job_ids, token=SECRET, base_url=final_sandbox.base_url, progress=False
        )
    text = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert "fetch_jobs" in text and "'token': Secret('********')" in text
    assert SECRET not in text


# -- transport errors are scrubbed --------------------------------------------------------------


@pytest.mark.parametrize("token", [SECRET, "secret\\tok-123", "secret'tok\"123"])
def test_an_error_message_echoing_the_token_is_scrubbed(token):
    with RawServer(echo_authorization) as server:
        df = ij.fetch_jobs(
            ["1001"],
            token=token,
            base_url=f"http://127.0.0.1:{server.port}",
            retries=0,
            progress=False,
        )
    assert token.encode() in server.heads[0]  # the token did travel, and came back
    row = df.iloc[0]
    assert row["error_code"] == "connection_error"
    assert "Bearer" in row["error_message"]
    assert not shows(token, row["error_message"])


def test_an_error_message_cut_short_holds_no_part_of_the_token():
    token = "tok-" + "0123456789abcdef" * 3  # 52 characters, like a real access token
    padding = 180  # puts the token across the point where a long message is cut

    with RawServer(lambda head: echo_authorization(head, padding)) as server:
        df = ij.fetch_jobs(
            ["1001"],
            token=token,
            base_url=f"http://127.0.0.1:{server.port}",
            retries=0,
            progress=False,
        )
    message = df.iloc[0]["error_message"]
    assert df.iloc[0]["error_code"] == "connection_error"
    assert "Bearer" in message
    assert token[:16] not in message


# -- proxies ------------------------------------------------------------------------------------


def set_proxies(monkeypatch, url: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, url)
        monkeypatch.setenv(name.lower(), url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_base_url_ignores_proxy_variables(final_sandbox, monkeypatch, host):
    base_url = final_sandbox.base_url.replace("127.0.0.1", host)
    with RawServer() as proxy:
        set_proxies(monkeypatch, f"http://127.0.0.1:{proxy.port}")
        df = ij.fetch_jobs(
            final_sandbox.job_ids[:5],
            token=final_sandbox.token,
            base_url=base_url,
            retries=0,
            progress=False,
        )
    assert proxy.connections == 0
    assert df["error_code"].isna().all()
    assert final_sandbox.stats["requests"] == 5


def test_a_remote_base_url_goes_through_the_proxy_variables(monkeypatch):
    # The control for the test above: the same variables are read, and used, for a remote host.
    with RawServer() as proxy:
        set_proxies(monkeypatch, f"http://127.0.0.1:{proxy.port}")
        df = ij.fetch_jobs(
            ["1001"],
            token=SECRET,
            base_url="https://api.intercom.invalid",
            retries=0,
            timeout=5.0,
            progress=False,
        )
    assert proxy.connections == 1
    assert df.iloc[0]["error_code"] == "connection_error"
    assert SECRET.encode() not in b"".join(proxy.heads)  # a CONNECT carries no Authorization
