"""Shared fixtures: sandboxes named for what they give, and a clean environment."""

from __future__ import annotations

import pytest

from intercom_jobs_nb.sandbox import Sandbox


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch):
    """Tests never see a real INTERCOM_TOKEN from the machine, nor draw progress bars."""
    monkeypatch.delenv("INTERCOM_TOKEN", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def final_sandbox():
    """60 jobs, all final at once (10% failed), generous rate limit."""
    with Sandbox(jobs=60, seed=1, pending_share=0.0, failed_share=0.1) as sb:
        yield sb


@pytest.fixture
def mixed_sandbox():
    """40 jobs; about half stay pending for good (deterministic), the rest are final."""
    with Sandbox(jobs=40, seed=2, pending_share=0.5, pending_seconds=(1e9, 1e9)) as sb:
        yield sb


@pytest.fixture
def opts(request):
    """Client options pointing at the test's sandbox, quiet and quick to give up."""

    def make(sb, **overrides):
        base = dict(token=sb.token, base_url=sb.base_url, progress=False, retries=2,
                    timeout=5.0)
        base.update(overrides)
        return base

    return make


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """Backoff between retries scaled down tenfold; test_transport checks the real schedule."""
    monkeypatch.setattr("intercom_jobs_nb.transport.BACKOFF_BASE", 0.05)
