"""Reaching Intercom: what never left is ``not_sent``, a run that cannot reach Intercom stops at
once, and a bad network setting is a `ConfigurationError` before any request.

Every test talks only to servers it starts on 127.0.0.1 (a `Sandbox`, the `netkit` TLS front
and CONNECT proxy, or a closed port), under `netkit.LoopbackOnly`: a lookup of another name
fails like a DNS failure, a connection elsewhere is refused. The base URL
``https://api.intercom.invalid`` is a name only the test's proxy knows. No test asserts a
time: the number of connections the client tried (counted by the guard, the proxy or the TLS
front) is what must not grow with the number of ids.
"""

from __future__ import annotations

import contextlib

import certifi
import pandas as pd
import pytest
from netkit import CA_PEM, HOST, ConnectProxy, LoopbackOnly, TLSFront, closed_port

import intercom_jobs_nb as ij
from intercom_jobs_nb import _cli as cli
from intercom_jobs_nb._clock import SYSTEM, FakeClock
from intercom_jobs_nb._engine import UNREACHABLE_AFTER, UNREACHABLE_WITHIN, Reach
from intercom_jobs_nb._ledger import Ledger
from intercom_jobs_nb._panel_controller import PanelController
from intercom_jobs_nb._transport import Route, TransportFailure
from intercom_jobs_nb.sandbox import Sandbox

TOKEN = "tok-reach-0123456789abcdef"  # long enough that scrubbing it leaves messages readable
MANY = 3000  # ids in a run that must stop early: the attempts must not grow with it
TYPE = "88"  # the sandbox's default ticket type
_NET_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def net(monkeypatch):
    """No proxy or CA setting from the machine; lookups and connections kept on loopback."""
    for name in _NET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return LoopbackOnly(monkeypatch)


@pytest.fixture
def bundle(tmp_path):
    """The test CA as a PEM file (what REQUESTS_CA_BUNDLE or SSL_CERT_FILE points at)."""
    path = tmp_path / "ca.pem"
    path.write_bytes(CA_PEM)
    return path


@pytest.fixture
def sandbox():
    """Enqueued jobs succeed at once, each making its ticket."""
    with Sandbox(jobs=0, enqueue_pending_seconds=(0, 0), token=TOKEN) as sb:
        yield sb


def sandbox_address(sb) -> tuple[str, int]:
    return ("127.0.0.1", int(sb.base_url.rsplit(":", 1)[1]))


def keyed_rows(n, prefix="k"):
    """``n`` valid rows, each with its key in ``key`` and in the ``attr:row_key`` attribute."""
    return [
        {"key": f"{prefix}{i}", "contact_id": f"c-{i}", "attr:row_key": f"{prefix}{i}"}
        for i in range(n)
    ]


def job_ids(n):
    return [str(100_000 + i) for i in range(n)]


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message.strip() and ". " not in message, message


# -- 4. what never left is not_sent ------------------------------------------------------------


@pytest.mark.parametrize("refusal", [407, 503, "close"])
def test_connects_the_proxy_refuses_are_retried_and_every_key_makes_one_ticket(
    sandbox, bundle, tmp_path, monkeypatch, net, refusal
):
    # The first CONNECT (GET /me, for the ledger) goes through; the next 12 are refused, so
    # every worker's first tries fail at the proxy; later ones go through.
    refused = 12
    with (
        TLSFront(sandbox_address(sandbox), tmp_path) as front,
        ConnectProxy(
            {f"{HOST}:443": ("127.0.0.1", front.port)},
            lambda n: "tunnel" if n == 1 or n > 1 + refused else refusal,
        ) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        out = ij.enqueue_tickets(
            keyed_rows(40),
            ledger=tmp_path / "ledger.sqlite",
            ticket_type_id=TYPE,
            token=TOKEN,
            base_url=f"https://{HOST}",
            max_workers=4,
            retries=6,
            progress=False,
        )
        assert proxy.refused() == refused
    assert out["enqueue_status"].tolist() == ["enqueued"] * 40
    assert sandbox.count_tickets(by="row_key") == {f"k{i}": 1 for i in range(40)}
    assert sandbox.enqueued == 40  # no POST was sent twice
    assert net.refused == []  # the proxy was used: no lookup of the host left the process


@pytest.mark.parametrize("refusal", [407, 503, "close"])
def test_rows_the_proxy_never_lets_through_are_not_sent_never_unknown_and_sent_once_later(
    sandbox, bundle, tmp_path, monkeypatch, net, refusal
):
    # CONNECT 1 (GET /me) and 2 (one worker) go through; every other one is refused: the rows
    # of the other workers spend their retries at the proxy and end not_sent.
    ledger = tmp_path / "ledger.sqlite"
    rows = keyed_rows(30)
    with TLSFront(sandbox_address(sandbox), tmp_path) as front:
        routes = {f"{HOST}:443": ("127.0.0.1", front.port)}
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        call = dict(
            ledger=ledger,
            ticket_type_id=TYPE,
            token=TOKEN,
            base_url=f"https://{HOST}",
            max_workers=4,
            retries=2,
            progress=False,
        )
        with ConnectProxy(routes, lambda n: "tunnel" if n <= 2 else refusal) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            first = ij.enqueue_tickets(rows, **call)
            assert proxy.refused() >= 3  # each refused row was tried retries + 1 times
        statuses = set(first["enqueue_status"])
        assert "unknown" not in statuses
        assert statuses == {"enqueued", "not_sent"}
        not_sent = first[first["enqueue_status"] == "not_sent"]
        assert not_sent["enqueue_error_code"].eq("connection_error").all()
        assert sandbox.enqueued == (first["enqueue_status"] == "enqueued").sum()
        with ConnectProxy(routes) as proxy:  # now every CONNECT goes through
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            second = ij.enqueue_tickets(rows, **call)
    assert second["enqueue_status"].tolist() == ["enqueued"] * 30
    assert sandbox.count_tickets(by="row_key") == {f"k{i}": 1 for i in range(30)}
    assert sandbox.enqueued == 30


def test_the_passes_of_an_enqueue_whose_posts_cannot_connect_end_not_sent_one_by_one(
    sandbox, bundle, tmp_path, monkeypatch, net
):
    # GET /me is answered (CONNECT 1); every CONNECT after is refused: the rows are not_sent
    # after their retries, each tried retries + 1 times, and none is unknown.
    with (
        TLSFront(sandbox_address(sandbox), tmp_path) as front,
        ConnectProxy(
            {f"{HOST}:443": ("127.0.0.1", front.port)}, lambda n: "tunnel" if n == 1 else 407
        ) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        out = ij.enqueue_tickets(
            keyed_rows(10),
            ledger=tmp_path / "ledger.sqlite",
            ticket_type_id=TYPE,
            token=TOKEN,
            base_url=f"https://{HOST}",
            retries=1,
            progress=False,
        )
        assert proxy.refused() == 10 * 2
    assert out["enqueue_status"].tolist() == ["not_sent"] * 10
    assert out["enqueue_error_message"].str.contains("407").all()
    assert sandbox.enqueued == 0


# -- fail fast when nothing can work --------------------------------------------------------


def test_fetch_jobs_against_a_closed_port_stops_after_a_few_attempts(net):
    port = closed_port()
    with pytest.raises(ij.UnreachableError) as caught:
        ij.fetch_jobs(
            job_ids(MANY), token=TOKEN, base_url=f"http://127.0.0.1:{port}", progress=False
        )
    attempts = net.attempts(port)
    # UNREACHABLE_AFTER failures trip the run; each of the 32 workers may have one more try
    # under way then. Without the rule: 3,000 ids x 5 tries.
    assert UNREACHABLE_AFTER <= attempts <= UNREACHABLE_AFTER + 32
    message = str(caught.value)
    assert message.startswith(f"cannot reach Intercom at http://127.0.0.1:{port}: ")
    assert "ConnectionRefusedError" in message and "before anything was sent" in message
    assert_one_sentence(message)
    assert caught.value.df is not None and len(caught.value.df) < 100


def test_wait_for_jobs_against_a_closed_port_stops_after_a_few_attempts(net):
    port = closed_port()
    with pytest.raises(ij.UnreachableError):
        ij.wait_for_jobs(
            job_ids(MANY),
            token=TOKEN,
            base_url=f"http://127.0.0.1:{port}",
            poll_interval=0.1,
            progress=False,
        )
    assert net.attempts(port) <= UNREACHABLE_AFTER + 32


def test_fetch_tickets_against_a_closed_port_stops_after_a_few_attempts(net):
    port = closed_port()
    jobs = pd.DataFrame(
        {
            "job_id": job_ids(MANY),
            "status": ["success"] * MANY,
            "resource_type": ["ticket"] * MANY,
            "resource_id": [str(n) for n in range(MANY)],
        }
    )
    with pytest.raises(ij.UnreachableError):
        ij.fetch_tickets(jobs, token=TOKEN, base_url=f"http://127.0.0.1:{port}", progress=False)
    assert net.attempts(port) <= UNREACHABLE_AFTER + 32


@pytest.mark.parametrize("retries", [4, 20])
def test_enqueue_against_a_closed_port_stops_early_leaving_every_row_not_sent(
    net, tmp_path, retries
):
    # GET /me (for the ledger) is the first request: with 4 retries it spends them (5 tries),
    # with 20 the rule ends it after UNREACHABLE_AFTER; no POST is ever tried.
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    ledger = tmp_path / "ledger.sqlite"
    with pytest.raises(ij.UnreachableError) as caught:
        ij.enqueue_tickets(
            keyed_rows(MANY),
            ledger=ledger,
            ticket_type_id=TYPE,
            token=TOKEN,
            base_url=url,
            retries=retries,
            progress=False,
        )
    assert net.attempts(port) == min(retries + 1, UNREACHABLE_AFTER)
    assert f"cannot reach Intercom at {url}" in str(caught.value)
    out = caught.value.df
    assert len(out) == MANY and set(out["enqueue_status"]) == {"not_sent"}
    with Ledger(str(ledger), url) as book:
        assert book.rows() == {}  # nothing sending, nothing unknown
        assert all(n == 0 for n in book.sent_counts().values())


def test_fetch_jobs_through_a_proxy_that_refuses_every_connect_stops_early(
    bundle, monkeypatch, net
):
    with ConnectProxy({}, lambda n: 407) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        with pytest.raises(ij.UnreachableError) as caught:
            ij.fetch_jobs(job_ids(MANY), token=TOKEN, base_url=f"https://{HOST}", progress=False)
        connects = len(proxy.connects)
    assert UNREACHABLE_AFTER <= connects <= UNREACHABLE_AFTER + 32
    message = str(caught.value)
    assert "through the proxy HTTPS_PROXY names" in message and "407" in message
    assert net.refused == []


def test_a_host_that_does_not_resolve_stops_the_run_after_a_few_lookups(net):
    with pytest.raises(ij.UnreachableError) as caught:
        ij.fetch_jobs(job_ids(MANY), token=TOKEN, base_url=f"https://{HOST}", progress=False)
    assert UNREACHABLE_AFTER <= net.lookups[HOST] <= UNREACHABLE_AFTER + 32
    assert "before anything was sent" in str(caught.value)


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "proxy"])
def test_an_untrusted_certificate_stops_the_run_at_the_first_handshake(
    sandbox, bundle, tmp_path, monkeypatch, net, through_proxy
):
    # The server's certificate is signed by a CA that is not in the bundle: a configuration
    # problem, never retried, and the message says which setting fixes it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with contextlib.ExitStack() as stack:
        front = stack.enter_context(TLSFront(sandbox_address(sandbox), tmp_path, trusted=False))
        if through_proxy:
            proxy = stack.enter_context(ConnectProxy({f"{HOST}:443": ("127.0.0.1", front.port)}))
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            base_url = f"https://{HOST}"
        else:
            base_url = f"https://127.0.0.1:{front.port}"
        with pytest.raises(ij.UnreachableError) as caught:
            ij.fetch_jobs(job_ids(MANY), token=TOKEN, base_url=base_url, progress=False)
        # One handshake when the run starts alone (before the first answer one request goes
        # at a time); a gate shared with an earlier run of the same token and host may let
        # every worker start at once: never more than max_workers.
        assert 1 <= front.handshakes <= 32
        assert front.completed == 0
    message = str(caught.value)
    assert "certificate" in message and "does not verify" in message
    assert "REQUESTS_CA_BUNDLE" in message and "SSL_CERT_FILE" in message
    assert_one_sentence(message)
    assert sandbox.stats["requests"] == 0


def test_an_untrusted_certificate_stops_an_enqueue_before_any_post(
    sandbox, bundle, tmp_path, monkeypatch, net
):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    ledger = tmp_path / "ledger.sqlite"
    with TLSFront(sandbox_address(sandbox), tmp_path, trusted=False) as front:
        base_url = f"https://127.0.0.1:{front.port}"
        with pytest.raises(ij.UnreachableError, match="certificate") as caught:
            ij.enqueue_tickets(
                keyed_rows(MANY),
                ledger=ledger,
                ticket_type_id=TYPE,
                token=TOKEN,
                base_url=base_url,
                progress=False,
            )
        assert front.handshakes == 1  # GET /me, alone before the passes
    assert set(caught.value.df["enqueue_status"]) == {"not_sent"}
    with Ledger(str(ledger), base_url) as book:
        assert book.rows() == {}


def test_a_bad_certificate_met_in_the_passes_ends_an_enqueue_with_the_ledger_consistent(
    sandbox, bundle, tmp_path, monkeypatch, net
):
    # GET /me goes through to the trusted TLS front; every later CONNECT reaches a front whose
    # certificate the bundle does not trust (an inspecting proxy appearing mid-run). The run
    # ends at once: no POST left, every row not_sent, nothing left sending in the ledger; the
    # same call once the certificate is right makes every ticket once.
    ledger = tmp_path / "ledger.sqlite"
    rows = keyed_rows(MANY)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    call = dict(
        ledger=ledger, ticket_type_id=TYPE, token=TOKEN, base_url=f"https://{HOST}", progress=False
    )
    address = sandbox_address(sandbox)
    with (
        TLSFront(address, tmp_path) as good,
        TLSFront(address, tmp_path, trusted=False) as bad,
    ):
        routes = {f"{HOST}:443": ("127.0.0.1", good.port)}
        with ConnectProxy(
            routes, lambda n: "tunnel" if n == 1 else ("127.0.0.1", bad.port)
        ) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            with pytest.raises(ij.UnreachableError, match="does not verify") as caught:
                ij.enqueue_tickets(rows, **call)
            assert bad.handshakes <= 32 and bad.completed == 0
        out = caught.value.df
        assert len(out) == MANY and set(out["enqueue_status"]) == {"not_sent"}
        assert sandbox.enqueued == 0
        with Ledger(str(ledger), f"https://{HOST}") as book:
            assert book.rows() == {}
            assert all(n == 0 for n in book.sent_counts().values())
        with ConnectProxy(routes) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            again = ij.enqueue_tickets(rows[:50], **call)
    assert again["enqueue_status"].tolist() == ["enqueued"] * 50
    assert sandbox.count_tickets(by="row_key") == {f"k{i}": 1 for i in range(50)}


def test_the_panel_says_it_cannot_reach_intercom_after_a_few_attempts(net):
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}"
    c = PanelController(job_ids(MANY), base_url=base_url, token=TOKEN)
    c.refresh(block=True)
    assert c.state == "error"
    assert c.message.startswith(f"Could not reach Intercom at {base_url}.")
    assert "before anything was sent" in c.detail
    assert net.attempts(port) <= UNREACHABLE_AFTER + 32


def test_the_cli_exits_4_at_once_against_a_closed_port(net, tmp_path, monkeypatch, capsys):
    port = closed_port()
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(job_ids(MANY)) + "\n")
    monkeypatch.setenv("INTERCOM_TOKEN", TOKEN)
    code = cli.main(["fetch", str(ids), "--base-url", f"http://127.0.0.1:{port}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert err.startswith(f"error: cannot reach Intercom at http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert net.attempts(port) <= UNREACHABLE_AFTER + 32


def test_the_cli_enqueue_exits_4_at_once_against_a_closed_port(net, tmp_path, monkeypatch, capsys):
    port = closed_port()
    rows = tmp_path / "tickets.csv"
    pd.DataFrame(keyed_rows(MANY)).to_csv(rows, index=False)
    monkeypatch.setenv("INTERCOM_TOKEN", TOKEN)
    code = cli.main(
        [
            "enqueue",
            str(rows),
            "--ledger",
            str(tmp_path / "ledger.sqlite"),
            "--ticket-type-id",
            TYPE,
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 4, err
    assert f"cannot reach Intercom at http://127.0.0.1:{port}" in err
    assert err.count("\n") == 1
    assert net.attempts(port) <= UNREACHABLE_AFTER


# -- errors by their real kind --------------------------------------------------------------


def _fetch_remote():
    return ij.fetch_jobs(job_ids(MANY), token=TOKEN, base_url=f"https://{HOST}", progress=False)


def _enqueue_remote(tmp_path):
    return ij.enqueue_tickets(
        keyed_rows(3),
        ledger=tmp_path / "ledger.sqlite",
        ticket_type_id=TYPE,
        token=TOKEN,
        base_url=f"https://{HOST}",
        progress=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("REQUESTS_CA_BUNDLE", "/no/such/ca.pem", "neither a file nor a folder"),
        ("CURL_CA_BUNDLE", "/no/such/ca.pem", "neither a file nor a folder"),
        ("SSL_CERT_FILE", "/no/such/ca.pem", "not a file"),
        ("HTTPS_PROXY", "socks5://127.0.0.1:1", "unsupported scheme socks5"),
        ("HTTPS_PROXY", "http://[bad", "cannot be used"),
        ("https_proxy", "http://user:pa55word@[bad", "cannot be used"),
    ],
)
@pytest.mark.parametrize("call", ["fetch_jobs", "enqueue_tickets"])
def test_a_bad_network_setting_is_a_configuration_error_before_any_request(
    monkeypatch, net, tmp_path, variable, value, words, call
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ij.ConfigurationError) as caught:
        if call == "fetch_jobs":
            _fetch_remote()
        else:
            _enqueue_remote(tmp_path)
    message = str(caught.value)
    assert variable in message and words in message
    assert "pa55word" not in message
    assert not isinstance(caught.value, ij.RunAbortedError)
    assert not net.lookups and not net.connects  # nothing was tried


def test_the_cli_says_which_setting_is_wrong_and_exits_2(monkeypatch, net, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("1001\n")
    monkeypatch.setenv("INTERCOM_TOKEN", TOKEN)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1")
    code = cli.main(["fetch", str(ids), "--base-url", f"https://{HOST}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "HTTPS_PROXY" in err and err.count("\n") == 1
    assert not net.lookups and not net.connects


def test_ssl_cert_file_is_honoured_when_requests_ca_bundle_is_unset(
    bundle, tmp_path, monkeypatch, net
):
    with (
        Sandbox(jobs=5, pending_share=0.0, failed_share=0.0, token=TOKEN) as sb,
        TLSFront(sandbox_address(sb), tmp_path) as front,
    ):
        url = f"https://127.0.0.1:{front.port}"
        # Without it: the test CA is unknown (certifi's CAs), the certificate fails.
        with pytest.raises(ij.UnreachableError, match="certifi"):
            ij.fetch_jobs(sb.job_ids, token=TOKEN, base_url=url, progress=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        df = ij.fetch_jobs(sb.job_ids, token=TOKEN, base_url=url, progress=False)
        assert df["error_code"].isna().all() and len(df) == 5
        # REQUESTS_CA_BUNDLE comes first: another bundle there wins over SSL_CERT_FILE.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        with pytest.raises(ij.UnreachableError, match="REQUESTS_CA_BUNDLE"):
            ij.fetch_jobs(sb.job_ids, token=TOKEN, base_url=url, progress=False)


# The OpenSSL subject hash of CA_PEM's subject (`openssl x509 -hash -noout`): a folder of CAs
# (SSL_CERT_DIR, or REQUESTS_CA_BUNDLE naming a folder) is looked up by it.
CA_SUBJECT_HASH = "6649df9f"


@pytest.mark.parametrize("variable", ["SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"])
def test_a_folder_of_cas_is_honoured(tmp_path, monkeypatch, net, variable):
    folder = tmp_path / "cas"
    folder.mkdir()
    (folder / f"{CA_SUBJECT_HASH}.0").write_bytes(CA_PEM)
    with (
        Sandbox(jobs=3, pending_share=0.0, failed_share=0.0, token=TOKEN) as sb,
        TLSFront(sandbox_address(sb), tmp_path) as front,
    ):
        url = f"https://127.0.0.1:{front.port}"
        monkeypatch.setenv(variable, str(folder))
        df = ij.fetch_jobs(sb.job_ids, token=TOKEN, base_url=url, progress=False)
        assert df["error_code"].isna().all() and len(df) == 3
        empty = tmp_path / "no-cas"  # the control: a folder without it, no trust
        empty.mkdir()
        monkeypatch.setenv(variable, str(empty))
        with pytest.raises(ij.UnreachableError, match="certificate"):
            ij.fetch_jobs(sb.job_ids, token=TOKEN + "-2", base_url=url, progress=False)


# -- the rule itself ---------------------------------------------------------------------------


def _reach(clock=SYSTEM):
    stops = []
    reach = Reach("https://x.test", Route(None, None), lambda: stops.append(1), clock)
    reach.start()
    return reach, stops


UNSENT = TransportFailure("connection_error", "ConnectionRefusedError: refused", sent=False)
SENT = TransportFailure("connection_error", "RemoteDisconnected: closed", sent=True)
BAD_CERT = TransportFailure(
    "connection_error", "the TLS certificate ... does not verify", sent=False, configuration=True
)


def test_fewer_unsent_failures_than_the_rule_do_not_end_a_run():
    reach, stops = _reach()
    for _ in range(UNREACHABLE_AFTER - 1):
        reach.report(UNSENT)
    assert reach.error is None and not stops
    reach.report(UNSENT)
    assert isinstance(reach.error, ij.UnreachableError) and stops == [1]
    assert str(reach.error).startswith("cannot reach Intercom at https://x.test: 8 requests")


def test_a_failure_that_may_have_been_sent_starts_the_count_again():
    reach, _ = _reach()
    for _ in range(UNREACHABLE_AFTER - 1):
        reach.report(UNSENT)
    reach.report(SENT)
    for _ in range(UNREACHABLE_AFTER - 1):
        reach.report(UNSENT)
    assert reach.error is None


def test_after_the_first_answer_failures_are_rows_but_a_bad_certificate_still_ends_the_run():
    reach, stops = _reach()
    reach.report(None)
    for _ in range(10 * UNREACHABLE_AFTER):
        reach.report(UNSENT)
    assert reach.error is None and not stops
    reach.report(BAD_CERT)
    assert reach.error is not None and "does not verify" in str(reach.error) and stops == [1]


def test_unsent_failures_for_long_enough_end_a_run_of_one_worker():
    clock = FakeClock(idle=3600.0)  # moves only when told
    reach, _ = _reach(clock)
    reach.report(UNSENT)
    clock.advance(UNREACHABLE_WITHIN - 0.1)
    reach.report(UNSENT)
    assert reach.error is None
    clock.advance(0.2)
    reach.report(UNSENT)
    assert reach.error is not None and "for 10 s" in str(reach.error)
