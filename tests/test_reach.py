"""Reaching Intercom: through a proxy a request that never left is ``not_sent``, and retried;
a bad network setting is a `ConfigurationError` before any request.

Every test talks only to servers it starts on 127.0.0.1 (a `Sandbox`, the `netkit` TLS front
and CONNECT proxy), under `netkit.LoopbackOnly`: a lookup of another name fails like a DNS
failure, a connection elsewhere is refused. The base URL ``https://api.intercom.invalid`` is a
name only the test's proxy knows.
"""

from __future__ import annotations

import certifi
import pytest
from netkit import CA_PEM, HOST, ConnectProxy, LoopbackOnly, TLSFront

import intercom_jobs_nb as ij
from intercom_jobs_nb import cli
from intercom_jobs_nb.sandbox import Sandbox

TOKEN = "tok-reach-0123456789abcdef"  # long enough that scrubbing it leaves messages readable
MANY = 3000  # ids: nothing may be asked, however many there are
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
    def fetch(url):
        return ij.fetch_jobs(sb.job_ids, token=TOKEN, base_url=url, progress=False, retries=0)

    with (
        Sandbox(jobs=5, pending_share=0.0, failed_share=0.0, token=TOKEN) as sb,
        TLSFront(sandbox_address(sb), tmp_path) as front,
    ):
        url = f"https://127.0.0.1:{front.port}"
        # Without it: the test CA is unknown (certifi's CAs), the certificate fails.
        assert fetch(url)["error_message"].str.contains("CERTIFICATE_VERIFY_FAILED").all()
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        df = fetch(url)
        assert df["error_code"].isna().all() and len(df) == 5
        # REQUESTS_CA_BUNDLE comes first: another bundle there wins over SSL_CERT_FILE.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        assert fetch(url)["error_message"].str.contains("CERTIFICATE_VERIFY_FAILED").all()
