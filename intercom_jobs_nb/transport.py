"""Transport: one job's status over HTTP, with retries, turned into one result row.

`requests.Session` is not documented as thread-safe, so no session is shared: each worker thread
owns one session with a single pooled keep-alive connection (`new_session`). The sessions
never follow redirects (the token must not travel to another host) and read proxy and CA settings
from the environment once, not per request.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import errors as E
from .ids import check_job_id
from .options import Options
from .pacing import RateGate

#: The columns of a result row, in order. Rows travel as tuples in this order.
COLUMNS = (
    "job_id", "status", "resource_type", "resource_id", "resource_url", "url", "http_status",
    "error_code", "error_message", "request_id", "attempts", "fetched_at",
)
STATUSES = ("pending", "success", "failed")
FINAL_STATUSES = frozenset({"success", "failed"})
MALFORMED_TRIES = 2  # a malformed answer is asked for at most this many times
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Interned values: 100,000 rows share these strings instead of holding a copy each.
_INTERN: dict[Any, Any] = {s: s for s in (*STATUSES, "ticket")}


def is_final_row(row: tuple) -> bool:
    """Whether a row will not change: the job is done, or its id can never be read."""
    if row[1] is not None:
        return row[1] in FINAL_STATUSES
    return row[7] is not None and row[7] not in E.TRANSIENT_CODES


class Stopped(Exception):
    """The run is stopping; the worker drops the job it holds."""


class Fatal(Exception):
    """An answer that stops the whole run (bad token, bad API version)."""

    def __init__(self, kind: type[E.RunAbortedError], message: str, code: str,
                 http_status: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.http_status = http_status


def new_session(options: Options) -> requests.Session:
    """A session for one worker thread: one keep-alive connection, no redirects, no netrc."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # trust_env would re-read proxies and .netrc on every request (and .netrc could replace our
    # Authorization header); read the environment's proxy and CA settings once instead.
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(options.base_url)
    env = os.environ
    session.verify = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or True
    session.headers.update(options.headers())
    return session


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s... capped, times U(0.5, 1)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def _intern(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return _INTERN.get(value, value)
    return str(value)


def _error_list(response: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from an Intercom error.list body, where there is one."""
    try:
        body = response.json()
    except ValueError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    request_id = body.get("request_id")
    errs = body.get("errors")
    if isinstance(errs, list) and errs and isinstance(errs[0], dict):
        first = errs[0]
        code, message = first.get("code"), first.get("message")
        return (str(code) if code else None, str(message) if message else None,
                str(request_id) if request_id else None)
    return None, None, str(request_id) if request_id else None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def error_row(job_id: str, url: str | None, code: str, message: str, *,
              http_status: int | None = None, request_id: str | None = None,
              attempts: int = 0) -> tuple:
    return (job_id, None, None, None, None, url, http_status, code, message, request_id,
            attempts, time.time())


def fetch_row(session: requests.Session, options: Options, gate: RateGate, job_id: str) -> tuple:
    """Ask for one job until it is answered or the retries are spent. Returns a row tuple.

    Raises:
        Stopped: the run is stopping.
        Fatal: the answer stops the whole run.
    """
    # Checked where the URL is made, whatever path the id came by (refresh of an edited frame,
    # the panel...): an id that is not a plain token would change where the token is sent.
    checked, problem = check_job_id(job_id)
    if problem or checked != job_id:
        return error_row(job_id, None, E.INVALID_JOB_ID,
                         f"job id {job_id!r} {problem or 'has surrounding whitespace'}; "
                         "it was not sent")
    url = options.job_url(job_id)
    stop = gate.stop
    attempts = 0
    malformed = 0
    while True:
        if not gate.acquire():
            raise Stopped
        attempts += 1
        try:
            response = session.get(url, timeout=options.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            gate.release()
            row = error_row(job_id, url, E.TIMEOUT,
                            f"no answer within {options.timeout:g} s ({_short(exc)})",
                            attempts=attempts)
        except requests.RequestException as exc:
            gate.release()
            row = error_row(job_id, url, E.CONNECTION_ERROR, _short(exc), attempts=attempts)
        else:
            received = time.time()
            status = response.status_code
            headers = response.headers
            gate.release(headers, received, status)
            header_request_id = headers.get("X-Request-Id")
            if status == 200:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                job = body if isinstance(body, dict) else None
                job_status = job.get("status") if job else None
                if job and job.get("id") not in (None, "") and (
                        job_status is None or job_status in STATUSES):
                    return (
                        job_id, _INTERN.get(job_status), _intern(job.get("resource_type")),
                        _intern(job.get("resource_id")), _intern(job.get("resource_url")),
                        _intern(job.get("url")) or url, 200, None, None, header_request_id,
                        attempts, received,
                    )
                malformed += 1
                kind = response.headers.get("Content-Type", "?").split(";")[0]
                if job is None:
                    why = f"the answer is not a JSON object (Content-Type {kind})"
                elif job.get("id") in (None, ""):
                    why = "the answer has no job id"
                else:
                    why = f"unknown job status {job_status!r}"
                row = error_row(job_id, url, E.INVALID_RESPONSE, why, http_status=200,
                                request_id=header_request_id, attempts=attempts)
                if malformed < MALFORMED_TRIES and attempts <= options.retries:
                    continue
                return row
            if status in _REDIRECTS:
                return error_row(
                    job_id, url, E.INVALID_RESPONSE,
                    f"redirect ({status}) to {headers.get('Location', '?')!r} not followed",
                    http_status=status, request_id=header_request_id, attempts=attempts,
                )
            code, message, request_id = _error_list(response)
            request_id = request_id or header_request_id
            if status == 401 or code in E.AUTH_CODES:
                raise Fatal(E.AuthenticationError,
                            f"Intercom rejected the token ({status} {code or 'unauthorized'}: "
                            f"{message or 'no message'}); check INTERCOM_TOKEN or token=, and "
                            "the region", code or "unauthorized", status)
            if code == "intercom_version_invalid":
                raise Fatal(E.ApiVersionError,
                            f"Intercom rejected Intercom-Version {options.api_version!r}: "
                            f"{message or code}", code, status)
            if status == 429:
                row = error_row(job_id, url, E.RATE_LIMIT_EXCEEDED,
                                message or "rate limit exceeded", http_status=status,
                                request_id=request_id, attempts=attempts)
                if attempts <= options.retries:
                    continue  # the gate holds every worker until the window resets
                return row
            if status >= 500:
                row = error_row(job_id, url, code or E.SERVER_ERROR,
                                message or f"HTTP {status} from Intercom", http_status=status,
                                request_id=request_id, attempts=attempts)
            else:
                return error_row(job_id, url, code or f"http_{status}",
                                 message or f"HTTP {status} from Intercom", http_status=status,
                                 request_id=request_id, attempts=attempts)
        # A passing failure (timeout, dropped connection, 5xx): back off, then try again.
        if attempts > options.retries:
            return row
        if stop.wait(backoff(attempts)):
            raise Stopped
