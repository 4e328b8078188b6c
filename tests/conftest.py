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
        base = dict(token=sb.token, base_url=sb.base_url, progress=False, retries=2)
        base.update(overrides)
        return base

    return make


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """Backoff between retries scaled down tenfold; test_transport checks the real schedule."""
    monkeypatch.setattr("intercom_jobs_nb._transport.BACKOFF_BASE", 0.05)


# -- the JobsPanel's fixtures (tests/test_widgets.py, tests/test_plotting.py) ------------------

PANEL_TOKEN = "panel-s3cret-Tok3n-0123456789"


@pytest.fixture
def panel_sandbox():
    """40 jobs, a quarter pending for good, with a token easy to search widget state for."""
    with Sandbox(
        jobs=40, seed=0, pending_share=0.25, pending_seconds=(1e9, 1e9), token=PANEL_TOKEN
    ) as sb:
        yield sb


@pytest.fixture
def panel_of():
    """Make JobsPanels on a sandbox (quick to give up); all are closed at the end of the test."""
    from intercom_jobs_nb._widgets import JobsPanel

    made = []

    def make(sb, job_ids=None, **kwargs):
        kwargs.setdefault("base_url", sb.base_url)
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("timeout", 5.0)
        panel = JobsPanel(sb.job_ids if job_ids is None else job_ids, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()
