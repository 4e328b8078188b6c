"""ij.HTTPTransport: the network as a Transport, over real sockets against the sandbox. A
transport of one's own wraps it (here: one that records each request) and the run is the same as
one with ``transport=None``."""

from __future__ import annotations

import threading

import pytest
from netkit import closed_port
from ticket_rows import keyed_rows

import intercom_jobs_nb as ij

WHAT = ["job_id", "status", "resource_type", "resource_id", "error_code", "http_status"]


class Recording:
    """A transport of one's own: notes each request's method and path, then sends it."""

    def __init__(self, network: ij.HTTPTransport) -> None:
        self.network = network
        self.seen: list[tuple[str, str, str | None]] = []
        self.closed = 0
        self._lock = threading.Lock()

    def handle(self, request: ij.Request) -> object:
        with self._lock:
            self.seen.append((request.method, request.path, request.headers.get("Authorization")))
        return self.network.handle(request)

    def close(self) -> None:
        self.closed += 1
        self.network.close()


@pytest.fixture(scope="module")
def sandbox():
    with ij.Sandbox(jobs=300, seed=4) as sb:
        yield sb


def test_it_is_a_transport():
    assert isinstance(ij.HTTPTransport(), ij.Transport)


def test_a_run_through_it_is_the_run_over_the_network(sandbox):
    ids = list(sandbox.job_ids)
    plain = ij.fetch_jobs(ids, token=sandbox.token, base_url=sandbox.base_url, progress=False)
    recording = Recording(ij.HTTPTransport())
    with ij.Client(
        token=sandbox.token, base_url=sandbox.base_url, progress=False, transport=recording
    ) as client:
        wrapped = client.fetch_jobs(ids)
    assert wrapped[WHAT].equals(plain[WHAT])
    assert sorted(path for _, path, _ in recording.seen) == sorted(
        f"/jobs/status/{i}" for i in ids if ij.check_job_id(i)[1] is None
    )
    assert {auth for _, _, auth in recording.seen} == {f"Bearer {sandbox.token}"}
    assert recording.closed == 1  # the client closed its transport, and so the connections


def test_its_connections_are_kept_alive_and_closed_by_close(sandbox):
    network = ij.HTTPTransport()
    with ij.Client(
        token=sandbox.token,
        base_url=sandbox.base_url,
        progress=False,
        transport=network,
        max_workers=4,
    ) as client:
        client.fetch_jobs(list(sandbox.job_ids)[:200])
        made = len(network._made)  # its own bookkeeping
    assert 1 <= made <= 4  # one per worker thread, kept alive for its 50 requests
    assert network._made == []  # closed with the client


def test_a_post_carries_its_body_and_content_type(sandbox, tmp_path):
    recording = Recording(ij.HTTPTransport())
    rows = keyed_rows(1)
    with ij.Client(
        token=sandbox.token, base_url=sandbox.base_url, progress=False, transport=recording
    ) as client:
        out = client.enqueue_tickets(rows, ledger=tmp_path / "l.sqlite", ticket_type_id="88")
    assert out["enqueue_status"].tolist() == ["enqueued"], out.iloc[0].to_dict()
    assert ("POST", "/tickets/enqueue") in {(m, p) for m, p, _ in recording.seen}


def test_nothing_listening_ends_the_run_as_unreachable():
    url = f"http://127.0.0.1:{closed_port()}"
    with (
        pytest.raises(ij.UnreachableError) as caught,
        ij.Client(
            token="t-secret-123", base_url=url, progress=False, transport=ij.HTTPTransport()
        ) as client,
    ):
        client.fetch_jobs([str(i) for i in range(1, 500)])
    assert "t-secret-123" not in str(caught.value)
    assert len(caught.value.df) <= 499


def test_a_bad_timeout_is_refused():
    with pytest.raises(ij.ConfigurationError, match="timeout"):
        ij.HTTPTransport(timeout=0)
