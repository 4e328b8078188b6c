"""A local stand-in for Intercom's job-status API ("Intercom on your laptop").

:class:`Sandbox` runs an HTTP/1.1 server on a free loopback port that answers
``GET /jobs/status/{job_id}`` the way Intercom's API 2.15 does: the same bodies (the OpenAPI
``jobs`` and ``error`` schemas), bearer-token auth, the ``Intercom-Version`` header, and the
fixed-window rate limit with its ``X-RateLimit-*`` headers. ``HEAD`` answers like ``GET``
without the body, and a percent-encoded path segment names the same job. It also answers
``POST /tickets/enqueue`` (which creates a pending job) and ``GET /me`` (the admin of the
token's workspace, with its ``app``; extra tokens may belong to other workspaces), and lets a
test steer it: jobs whose outcome follows from a seed, jobs that stay pending for a while (or
forever), added jobs, injected faults (5xx, dropped connections, slow or malformed answers),
added latency and a skewed server clock. Counters are kept for benchmarks and served at
``GET /__sandbox/stats`` (``POST /__sandbox/reset_stats`` clears them); these two control
paths need no token and are left out of the counters.

Standard library only, so it can run anywhere the package does.

Where things are, and where a new one goes:

- ``_sandbox.py``: :class:`Sandbox`, its options and controls, and ``Sandbox._admit``, the
  one lock section per request that counts it and decides its answer. A new **route**'s
  answer goes in ``Sandbox._route_locked``.
- ``_routes.py``: the ``ROUTES`` table of API paths (a new **route** is one row there, with a
  new route number) and the percent-decoding, segment-wise path matching.
- ``_faults.py``: the ``TABLE`` of faults, name -> what it answers (status, error, body,
  drop, delay, rate-limited). A new **fault** is one row there; :data:`FAULTS` follows.
- ``_versions.py``: :data:`INTERCOM_VERSIONS`. A new **version** is appended there.
- ``_ratelimit.py``: ``FixedWindow``, the fixed-window limit, on an injectable clock.
- ``_store.py``: jobs, their outcomes, and the pre-rendered bodies.
- ``_workspaces.py``: tokens -> workspaces, and the pre-rendered ``/me`` bodies.
- ``_stats.py``: the counters behind :attr:`Sandbox.stats`.
- ``_http.py``: the threading HTTP server and its handler (one write per answer).

Example:
    >>> import requests
    >>> from intercom_jobs_nb.sandbox import Sandbox
    >>> with Sandbox(jobs=3, seed=0, pending_share=0.0, failed_share=0.0) as sb:
    ...     r = requests.get(f"{sb.base_url}/jobs/status/{sb.job_ids[0]}",
    ...                      headers={"Authorization": f"Bearer {sb.token}"})
    ...     r.json()["status"], r.headers["X-RateLimit-Remaining"]
    ('success', '9999')
"""

from __future__ import annotations

from ._faults import FAULTS
from ._sandbox import Sandbox
from ._versions import INTERCOM_VERSIONS
from ._workspaces import DEFAULT_TOKEN, DEFAULT_WORKSPACE

__all__ = ["FAULTS", "INTERCOM_VERSIONS", "DEFAULT_TOKEN", "DEFAULT_WORKSPACE", "Sandbox"]
