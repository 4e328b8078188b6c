"""The ``Intercom-Version`` values the sandbox accepts.

A new version goes in :data:`INTERCOM_VERSIONS` below, once Intercom publishes it.
"""

from __future__ import annotations

#: Values of ``Intercom-Version`` that are accepted: every value published in the
#: ``intercom_version`` enum of Intercom's official OpenAPI descriptions (repository
#: intercom/Intercom-OpenAPI at commit 8889625a7b931d8649e18726e7f872ff073520fc:
#: ``descriptions/2.16/api.intercom.io.yaml`` lists 1.0-1.4 and 2.0-2.16, the Preview
#: description ``descriptions/0/`` adds ``Preview``), plus ``Unstable``, the name ``Preview``
#: had until Intercom renamed it (Intercom-OpenAPI #444), still accepted. Clients default to
#: 2.15 (:data:`intercom_jobs_nb._options.DEFAULT_API_VERSION`); the sandbox has no default:
#: a request without the header is answered like any other.
INTERCOM_VERSIONS: tuple[str, ...] = (
    *(f"1.{minor}" for minor in range(5)),
    *(f"2.{minor}" for minor in range(17)),
    "Preview",
    "Unstable",
)
