"""Error codes: every code the toolkit names, in one place, and the one rule for transient ones.

A row's ``error_code`` is either one of Intercom's own codes, passed through (``job_not_found``,
``bad_gateway``...), or one the toolkit makes (the first group below). Whether a failure is
*transient* (asking again later may succeed) is decided here, once, from the answer, and recorded
on the row as ``final``; retries, `refresh`, `wait_for_jobs`, the panel and checkpoints all read
that field.

Where a change goes: a new code the toolkit makes is a constant here; a new code that stops the
whole run goes into `AUTH_CODES` (or gets its own exception in ``_errors.py``); a new transient
kind of answer is a line in `is_transient`.
"""

from __future__ import annotations

__all__ = [
    "INVALID_JOB_ID",
    "TIMEOUT",
    "CONNECTION_ERROR",
    "INVALID_RESPONSE",
    "SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
    "RATE_LIMIT_EXCEEDED",
    "JOB_NOT_FOUND",
    "UNAUTHORIZED",
    "INTERCOM_VERSION_INVALID",
    "AUTH_CODES",
    "TOOLKIT_TRANSIENT_CODES",
    "NO_ANSWER_CODES",
    "code_for",
    "is_transient",
    "http_code",
]

# Codes the toolkit itself puts in ``error_code``.
INVALID_JOB_ID = "invalid_job_id"  # never sent: the id would change the URL
TIMEOUT = "timeout"  # no complete answer within ``timeout`` seconds
CONNECTION_ERROR = "connection_error"  # refused, reset, dropped, TLS or protocol failure
INVALID_RESPONSE = "invalid_response"  # an answer that is not this job (or too large)

# Intercom's codes that the toolkit acts on.
SERVER_ERROR = "server_error"  # also the toolkit's name for a 5xx without a code
SERVICE_UNAVAILABLE = "service_unavailable"
RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"  # also the toolkit's, when the budget never came
JOB_NOT_FOUND = "job_not_found"
UNAUTHORIZED = "unauthorized"
INTERCOM_VERSION_INVALID = "intercom_version_invalid"

#: Intercom codes meaning the token itself is bad or may not read jobs: the whole run stops
#: (asking for the next job would meet the same answer).
AUTH_CODES = frozenset(
    {
        UNAUTHORIZED,
        "token_revoked",
        "token_expired",
        "token_not_found",
        "token_blocked",
        "forbidden",
        "api_plan_restricted",
    }
)

#: The toolkit's own codes for a passing failure.
TOOLKIT_TRANSIENT_CODES = frozenset(
    {TIMEOUT, CONNECTION_ERROR, INVALID_RESPONSE, RATE_LIMIT_EXCEEDED}
)


#: Failures with no answer at all: a run whose every request ended so could not reach Intercom.
NO_ANSWER_CODES = frozenset({TIMEOUT, CONNECTION_ERROR})


def is_transient(http_status: int | None, code: str) -> bool:
    """Whether a failed fetch may succeed if asked again: the one rule.

    Transient: no answer (timeout, connection), a malformed answer, a 429, and any 5xx whatever
    its code (``bad_gateway`` included). Final: every other 4xx (``job_not_found``...) and an id
    that was never sent.
    """
    if code in TOOLKIT_TRANSIENT_CODES:
        return True
    return http_status is not None and (http_status >= 500 or http_status == 429)


def code_for(http_status: int, code: str | None) -> str:
    """The ``error_code`` of an error answer, from its status and the code its body names."""
    if http_status == 429:
        return RATE_LIMIT_EXCEEDED
    if http_status >= 500:
        return code or SERVER_ERROR
    if 200 <= http_status < 300:  # a 2xx that is not what was asked for
        return INVALID_RESPONSE
    return code or http_code(http_status)


def http_code(http_status: int) -> str:
    """The code of an error answer that names none: ``http_418``."""
    return f"http_{http_status}"
