"""A local stand-in for Intercom's job-status and ticket API ("Intercom on your laptop").

:class:`Sandbox` runs an HTTP/1.1 server on a free loopback port that answers
``GET /jobs/status/{job_id}`` the way Intercom's API 2.15 does: the same bodies (the OpenAPI
``jobs`` and ``error`` schemas), bearer-token auth, the ``Intercom-Version`` header, and the
fixed-window rate limit with its ``X-RateLimit-*`` headers. ``HEAD`` answers like ``GET``
without the body, and a percent-encoded path segment names the same job. It also answers
``GET /me`` (the admin of the token's workspace, with its ``app``; extra tokens may belong to
other workspaces, each with its own rate limit and, with ``separate_jobs=True``, its own
job outcomes), and lets a test steer it: jobs whose outcome follows from a seed, jobs that
stay pending for a while (or forever), added jobs, injected faults (5xx, dropped connections,
slow or malformed answers), added latency and a skewed server clock. Counters are kept for
benchmarks and served at ``GET /__sandbox/stats`` (``POST /__sandbox/reset_stats`` clears
them); these two control paths need no token and are left out of the counters.

Tickets, as 2.15 has them:

- ``POST /tickets/enqueue`` checks its body like the spec's ``create_ticket_request``: a bad
  body, an unknown ``ticket_type_id`` (``Sandbox(ticket_types={"1234": "Bug report"})``; one
  type, ``"88"``, by default) or more than one contact is a 400 ``error.list`` with code
  ``parameter_invalid`` and one message (``"contacts is required"``, ``"created_at isn't an
  integer"``, ``"Ticket type not found"``...), and creates nothing. A good body answers a new
  ``pending`` job (``resource_type`` ``"ticket"``, ``resource_id`` null) that, after
  ``uniform(*enqueue_pending_seconds)`` seconds, fails with probability
  ``enqueue_failed_share`` (no ticket) or succeeds naming its new ticket; both draws follow
  ``seed``. Optional fields sent as null count as absent, unknown fields are ignored, and a
  numeric ``ticket_type_id`` is taken as its string (the spec's own example sends ``88``).
- ``GET /tickets/{ticket_id}`` answers a ticket once its job has succeeded (the ``ticket``
  schema: the enqueued ``ticket_attributes`` with ``_default_title_``/``_default_description_``
  null unless given, its type, state ``submitted``, the contact, assignees ``"0"`` unless
  assigned, UNIX-second times: ``created_at`` as sent, else the enqueue's time), else 404
  ``ticket_not_found`` (the code of 2.15's other ticket paths). It counts against the rate
  limit like every authenticated request; faults do not apply to it.
- Enqueue requests meet faults too (:data:`ENQUEUE_FAULTS`, injected with
  :meth:`Sandbox.inject_enqueue` or drawn from ``Sandbox(faults=...)``), among them
  ``"drop_after"``: the request is carried out, then the connection is closed unanswered, so
  the job and its ticket exist though the client never heard so.
- A test reads what was created: :attr:`Sandbox.tickets` (a snapshot: title, attributes,
  contact, the enqueue body...), :meth:`Sandbox.count_tickets` (tickets per title or per any
  attribute, e.g. an idempotency key: a count above 1 is a duplicate) and
  :attr:`Sandbox.enqueued` (enqueue requests carried out).

Standard library only, so it can run anywhere the package does.

Where things are, and where a new one goes:

- ``_sandbox.py``: :class:`Sandbox`, its options and controls, and ``Sandbox._admit``, the
  one lock section per request that counts it and decides its answer. A new **route**'s
  answer goes in ``Sandbox._route_locked``.
- ``_routes.py``: the ``ROUTES`` table of API paths (a new **route** is one row there, with a
  new route number) and the percent-decoding, segment-wise path matching.
- ``_faults.py``: the ``TABLE`` of faults, name -> what it answers (status, error, body,
  drop, delay, rate-limited, processed first). A new **fault** is one row there; :data:`FAULTS`
  follows; ``ENQUEUE_TABLE`` (:data:`ENQUEUE_FAULTS`) adds ``drop_after`` for enqueues.
- ``_versions.py``: :data:`INTERCOM_VERSIONS`. A new **version** is appended there.
- ``_ratelimit.py``: ``FixedWindow``, the fixed-window limit, on an injectable clock.
- ``_store.py``: jobs, their outcomes, and the pre-rendered bodies.
- ``_completion.py``: how jobs become final (``"uniform"``, `Queue`, `Independent`).
- ``_tickets.py``: the checks of an enqueue body, ticket types, and tickets (bodies rendered
  once, when the enqueue is carried out).
- ``_workspaces.py``: tokens -> workspaces, and the pre-rendered ``/me`` bodies.
- ``_stats.py``: the counters behind :attr:`Sandbox.stats`, :meth:`Sandbox.window_counts`
  and :meth:`Sandbox.refused` (per workspace).
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

from ._completion import Independent, Queue
from ._faults import ENQUEUE_FAULTS, FAULTS
from ._sandbox import Sandbox
from ._tickets import DEFAULT_TICKET_TYPES
from ._versions import INTERCOM_VERSIONS
from ._workspaces import DEFAULT_TOKEN, DEFAULT_WORKSPACE

__all__ = [
    "ENQUEUE_FAULTS",
    "FAULTS",
    "INTERCOM_VERSIONS",
    "DEFAULT_TICKET_TYPES",
    "DEFAULT_TOKEN",
    "DEFAULT_WORKSPACE",
    "Independent",
    "Queue",
    "Sandbox",
]
