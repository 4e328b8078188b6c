"""Enqueue: create tickets in bulk from a spreadsheet, never one twice.

`enqueue_tickets` turns each row into a ``POST /tickets/enqueue`` body, sends the rows the
ledger (``_ledger.py``) has never sent, through the one run engine, and returns the rows with
their job ids. Then `wait_for_jobs` follows the jobs, and `fetch_tickets` the tickets they made.

A row's key is its identity across runs: the ledger sends each key once. The key is the ``key``
column (or the column named by ``key=``). Without one, it is derived from the row's content, never
from its position, so inserting, deleting or sorting rows changes no other row's key: it is a
hash of the row's contact and title (`content_key`), the two things that tell one ticket from
another in a sheet with no ids. Why not every cell: a column added to the sheet between two runs
would change every key and send every row again; why not the whole body: fixing a typo in a
description would make a second ticket, where now the ledger sees the same key with another body
and says so (``key_changed``). Two rows for one contact with the same title are refused as
repeated keys: give the sheet a ``key`` column if both are meant.

A key means one ticket body. The ledger records each key's body fingerprint; a key sent before
with another body is not sent and not labelled with the old job: it is ``rejected`` with
``enqueue_error_code`` ``key_changed`` and the fields that differ. A key that was ``rejected``
(nothing was created) is sent again once its body changed (a corrected ticket type, a fixed
contact), and only then.

What is retried, and what is not: a POST that may have reached Intercom is never sent twice.
Retried automatically are only a 429 (Intercom did not process it: the run waits for the window
as for statuses) and a failure before the request left (connection refused, DNS, a proxy that
refused or dropped the CONNECT tunnel, a failed TLS handshake): such a row is ``not_sent`` once
its retries are spent. A timeout or a dropped connection after sending, a 5xx, or an answer that
is not a job is ``unknown``: it may or may not have created a ticket, and it is resent only with
``resend_unknown=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _codes as C
from . import _textfiles as textfiles
from ._engine import Run
from ._errors import ConfigurationError
from ._ledger import (
    ENQUEUE_STATUSES,
    ENQUEUED,
    NOT_SENT,
    REJECTED,
    UNKNOWN,
    Body,
    EnqueueRow,
    Ledger,
)
from ._options import Options, hide_token
from ._pacing import Pacer
from ._rows import columns_of, records_frame
from ._transport import (
    MAX_MESSAGE,
    Answer,
    Channel,
    Fatal,
    Policy,
    Stopped,
    TransportFailure,
    ask,
    parse_json,
    read_error,
    text_field,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = [
    "enqueue_tickets",
    "ticket_bodies",
    "content_key",
    "ENQUEUE_COLUMNS",
    "INVALID_ROW",
    "KEY_CHANGED",
    "ENQUEUE_PATH",
]

ENQUEUE_PATH = "/tickets/enqueue"
INVALID_ROW = "invalid_row"  # the toolkit's code for a row that cannot make a valid body
KEY_CHANGED = "key_changed"  # the toolkit's code for a key sent before with another body
KEY_COLUMN = "key"  # the column that holds each row's key, unless key= names another
#: The input columns a body field comes from, to name them when a key's body changed.
_FIELD_COLUMNS = {
    "contacts": "contact_id/contact_external_id/contact_email",
    "ticket_attributes._default_title_": "title",
    "ticket_attributes._default_description_": "description",
}
#: The columns `enqueue_tickets` adds to the input rows (declared by `EnqueueRow`).
ENQUEUE_COLUMNS = tuple(c.label for c in columns_of(EnqueueRow) if c.dtype is not None)
_CONTACT_COLUMNS = (
    ("contact_id", "id"),
    ("contact_external_id", "external_id"),
    ("contact_email", "email"),
)
_ATTR = "attr:"


def _value(value: Any) -> Any:
    """A cell as a JSON value; None for a missing one."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, str):
        return value if value.strip() else None
    return value


def _timestamp(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        return int(value)
    return int(pd.Timestamp(value).timestamp())


def _read_rows(rows: Any) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, (str, os.PathLike)):
        path = os.fspath(rows)
        if not path.lower().endswith(".csv"):
            raise ConfigurationError(
                f"rows must be a DataFrame, a list of dicts or a .csv path, got {path!r}"
            )
        try:  # UTF-8, or what a byte-order mark says; a tab-separated file too (textfiles)
            return textfiles.read_table(path)
        except (OSError, pd.errors.ParserError) as exc:
            raise ConfigurationError(f"cannot read {path!r} as CSV: {exc}") from None
    if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        return pd.DataFrame(rows)
    raise ConfigurationError(
        f"rows must be a DataFrame, a list of dicts or a .csv path, got {type(rows).__name__}"
    )


def ticket_bodies(
    rows: Any, *, ticket_type_id: str | int | None = None, key: str | None = None
) -> tuple[pd.DataFrame, list[str], list[dict[str, Any] | str]]:
    """The input frame, each row's key, and its enqueue body (or why it cannot make one).

    Args:
        rows: as `enqueue_tickets` takes them.
        ticket_type_id: the ticket type of rows without one of their own.
        key: the column of each row's key; default ``key`` if there is one, else each row's
            `content_key`.

    Raises:
        ConfigurationError: the keys are not unique, the ``key`` column is missing or has
            empty cells, or ``rows`` is not a table.
    """
    frame = _read_rows(rows)
    columns = list(frame.columns)
    attrs = [c for c in columns if isinstance(c, str) and c.startswith(_ATTR)]
    records = frame.to_dict("records")
    bodies: list[dict[str, Any] | str] = [
        _body(record, attrs, ticket_type_id) for record in records
    ]
    column = key if key is not None else (KEY_COLUMN if KEY_COLUMN in frame.columns else None)
    if column is not None:
        if column not in frame.columns:
            raise ConfigurationError(
                f"key={column!r}: no such column (the columns are {', '.join(map(str, columns))})"
            )
        keys = [str(_value(k)) if _value(k) is not None else "" for k in frame[column]]
        if any(not k for k in keys):
            raise ConfigurationError(
                f"every row needs a key (the {column!r} column has empty cells)"
            )
    else:
        keys = [
            content_key(body) if isinstance(body, dict) else _auto_key(record)
            for body, record in zip(bodies, records, strict=True)
        ]
    _check_unique(keys, frame.index, by_content=column is None)
    return frame, keys, bodies


def content_key(body: dict[str, Any]) -> str:
    """The key of a row without a key column, from its body: ``auto-`` and 20 hex digits of a
    SHA-256 of its contact and title (see the module docstring for why those two)."""
    attributes = body.get("ticket_attributes") or {}
    return _auto_key([body.get("contacts"), attributes.get("_default_title_")])


def _auto_key(identity: Any) -> str:
    """``auto-`` and a hash of ``identity``; of all its cells for a row that cannot make a body
    (it is never sent, but still needs a key of its own)."""
    if isinstance(identity, dict):
        identity = {str(c): _value(v) for c, v in identity.items()}
    text = json.dumps(identity, sort_keys=True, default=str, ensure_ascii=False)
    return "auto-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def _check_unique(keys: list[str], index: pd.Index, *, by_content: bool) -> None:
    counts = Counter(keys)
    repeated = [k for k, n in counts.items() if n > 1]
    if not repeated:
        return
    if by_content:
        where: dict[str, list[str]] = {}
        for position, k in enumerate(keys):
            if counts[k] > 1:
                where.setdefault(k, []).append(str(index[position]))
        groups = ["rows " + " and ".join(rows) for rows in list(where.values())[:5]]
        raise ConfigurationError(
            "without a key column, a row is known by its contact and title, and these rows "
            f"share them: {'; '.join(groups)}{' ...' if len(where) > 5 else ''}. If each is "
            "meant as its own ticket, add a 'key' column with a different value for each row "
            "(any text that stays with the row); otherwise remove the repeated rows"
        )
    shown = ", ".join(sorted(repeated)[:5]) + (" ..." if len(repeated) > 5 else "")
    raise ConfigurationError(
        f"keys must be unique (a key is a row's identity: it is what makes a resend safe); "
        f"repeated: {shown}"
    )


def _body(record: dict[Any, Any], attrs: list[str], default_type: Any) -> dict[str, Any] | str:
    contact = None
    for column, field in _CONTACT_COLUMNS:
        value = _value(record.get(column))
        if value is not None:
            contact = {field: str(value)}
            break
    if contact is None:
        return "no contact: fill contact_id, contact_external_id or contact_email"
    ticket_type = _value(record.get("ticket_type_id"))
    if ticket_type is None:
        ticket_type = default_type
    if ticket_type is None or not str(ticket_type).strip():
        return "no ticket type: pass ticket_type_id=... or fill a ticket_type_id column"
    body: dict[str, Any] = {"ticket_type_id": str(ticket_type), "contacts": [contact]}
    attributes: dict[str, Any] = {}
    for column, name in (("title", "_default_title_"), ("description", "_default_description_")):
        value = _value(record.get(column))
        if value is not None:
            attributes[name] = str(value)
    for column in attrs:
        value = _value(record.get(column))
        if value is not None:
            attributes[column[len(_ATTR) :]] = value
    if attributes:
        body["ticket_attributes"] = attributes
    company = _value(record.get("company_id"))
    if company is not None:
        body["company_id"] = str(company)
    created = _value(record.get("created_at"))
    if created is not None:
        try:
            body["created_at"] = _timestamp(created)
        except (ValueError, TypeError, OverflowError):
            return f"created_at {created!r} is not a time"
    skip = _value(record.get("skip_notifications"))
    if skip is not None:
        if isinstance(skip, str):
            if skip.lower() not in ("true", "false", "1", "0", "yes", "no"):
                return f"skip_notifications {skip!r} is not true or false"
            skip = skip.lower() in ("true", "1", "yes")
        body["skip_notifications"] = bool(skip)
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"a value cannot be sent as JSON ({exc})"
    return body


def _not_sent_yet(row: EnqueueRow) -> bool:
    """An enqueue is sent again only while its row is ``not_sent`` (a 429, or a failure before
    the request left): anything else may have made a ticket."""
    return not row.final


#: Enqueues: never twice a request that may have reached Intercom.
ENQUEUE_POLICY = Policy(resend=False, transient=_not_sent_yet)


def read_enqueue(key: str, answer: Answer, options: Options) -> EnqueueRow:
    """One answer to a key's ``POST /tickets/enqueue`` as its row.

    Raises:
        Fatal: the token or API version was rejected (the request was not processed).
    """
    status, at = answer.status, answer.received_at
    parsed = parse_json(answer.body) if answer.problem is None else None
    header_id = text_field(answer.headers.get("X-Request-Id"), 128)
    if status == 200:
        job_id = text_field(parsed.get("id"), 128) if isinstance(parsed, dict) else None
        if job_id and isinstance(parsed, dict) and parsed.get("type") in (None, "job"):
            return EnqueueRow.of(key, ENQUEUED, job_id=job_id, request_id=header_id, at=at)
        return EnqueueRow.of(
            key,
            UNKNOWN,
            code=C.INVALID_RESPONSE,
            request_id=header_id,
            message="Intercom answered 200 but not with a job; a ticket may have been created",
            at=at,
        )
    code, message, request_id = read_error(answer, parsed, options)
    message = message[:MAX_MESSAGE]
    if status == 429:  # not processed: sent again (`ask` waits for the window) while it may
        return EnqueueRow.of(
            key, NOT_SENT, code=code, request_id=request_id, message=message, at=at
        )
    if 400 <= status < 500:
        return EnqueueRow.of(
            key, REJECTED, code=code, message=message, request_id=request_id, at=at
        )
    return EnqueueRow.of(
        key,
        UNKNOWN,
        code=code,
        message=f"{message}: the request may have been processed; check before resend_unknown=True",
        request_id=request_id,
        at=at,
    )


def _unanswered(key: str, failure: TransportFailure) -> EnqueueRow:
    """The row of a POST that got no answer: ``not_sent`` when it certainly never left, else
    ``unknown``."""
    if not failure.sent:
        return EnqueueRow.of(key, NOT_SENT, code=failure.code, message=failure.message)
    return EnqueueRow.of(
        key,
        UNKNOWN,
        code=failure.code,
        message=(
            f"{failure.message}; the request may have reached Intercom and created a "
            "ticket: check before resend_unknown=True"
        ),
    )


def send_enqueue(client: Channel, gate: Pacer, key: str, body: bytes) -> EnqueueRow:
    """POST one body through the one retry loop (`transport.ask`), with `ENQUEUE_POLICY`:
    sent again only when Intercom certainly did not take it (see the module).

    Raises:
        Stopped: the run is stopping and the request was not sent.
        Fatal: the token or API version was rejected (the request was not processed).
    """
    options = client.options

    def read(answer: Answer, attempts: int) -> EnqueueRow:
        return read_enqueue(key, answer, options)

    def failed(failure: TransportFailure, attempts: int) -> EnqueueRow:
        return _unanswered(key, failure)

    return ask(client, gate, ENQUEUE_PATH, read, failed, ENQUEUE_POLICY, method="POST", body=body)


class EnqueueWork:
    """The enqueues of one call (the engine's `Work`)."""

    desc = "enqueued"
    kinds: tuple[str, ...] = ENQUEUE_STATUSES

    def __init__(
        self,
        frame: pd.DataFrame,
        keys: list[str],
        bodies: list[tuple[bytes, Body] | None],
        ledger: Ledger,
    ) -> None:
        self.input = frame
        self.keys = keys
        self.bodies = bodies
        self.ledger = ledger

    @staticmethod
    def outcome(row: EnqueueRow) -> str:
        return row.enqueue_status

    def ask(self, client: Channel, gate: Pacer, index: int) -> EnqueueRow:
        key, body = self.keys[index], self.bodies[index]
        assert body is not None  # rows without a body are rejected before the passes
        encoded, fingerprint = body
        self.ledger.intend(key, fingerprint)
        try:
            row = send_enqueue(client, gate, key, encoded)
        except (Stopped, Fatal):
            self.ledger.forget(key)  # certainly not processed
            raise
        self.ledger.record(row)
        return row

    def frame(self, rows: list[EnqueueRow | None], consume: bool) -> pd.DataFrame:
        filled = [
            row if row is not None else EnqueueRow.of(key, NOT_SENT)
            for key, row in zip(self.keys, rows, strict=True)
        ]
        out = records_frame(filled, EnqueueRow)
        base = self.input.reset_index(drop=True)
        base = base.drop(columns=[c for c in ENQUEUE_COLUMNS if c in base.columns])
        return pd.concat([base, out], axis=1)


def enqueue_tickets(
    rows: Any,
    *,
    ledger: str | os.PathLike[str],
    ticket_type_id: str | int | None = None,
    key: str | None = None,
    resend_unknown: bool = False,
    **options: Unpack[ClientOptions],
) -> pd.DataFrame:
    """Create a ticket for each row (``POST /tickets/enqueue``), never two for one key.

    Args:
        rows: a DataFrame, a list of dicts or a .csv path, one ticket per row. Columns: ``key``
            (the row's identity, unique; without it, each row's contact and title: see
            `content_key`), one of ``contact_id``, ``contact_external_id``, ``contact_email``;
            ``title``, ``description``; any ``attr:<name>`` (a ticket attribute); optional
            ``ticket_type_id``, ``company_id``, ``created_at``, ``skip_notifications``.
        ledger: the SQLite file that remembers what was sent; call again with the same file to
            resume: only keys never sent are sent. One run at a time uses it: a second one
            stops before sending (`FileInUseError`).
        ticket_type_id: the ticket type of rows without a ``ticket_type_id`` column value.
        key: the column that holds each row's key, if it is not named ``key``.
        resend_unknown: send again the keys whose earlier request may or may not have created
            a ticket (``unknown``); check them in Intercom first.
        **options: the options of `fetch_jobs` (``token``, ``region``, ``base_url``...; one
            workspace).

    Returns:
        The input rows plus ``key``, ``job_id``, ``enqueue_status`` (``enqueued``,
        ``rejected``, ``unknown``, or ``not_sent`` when the run stopped before sending the row),
        ``enqueue_error_code``, ``enqueue_error_message``, ``enqueue_request_id``,
        ``enqueued_at``. Pass it to `wait_for_jobs`, then `fetch_tickets`. A key sent before
        with another body is ``rejected`` with ``enqueue_error_code`` ``key_changed``.

    Raises:
        ConfigurationError: bad arguments, repeated keys, a ledger of another workspace, or a
            proxy or CA bundle from the environment that cannot be used.
        FileInUseError: another run is using the ledger; nothing was sent.
        AuthenticationError, ApiVersionError, UnreachableError (no request could be sent and
        none was answered, or a certificate that does not verify), CheckpointError (the ledger
        cannot be written, or its last run died and its ``-wal`` file is missing),
        FetchInterrupted: the run stopped; ``.df`` has every row, ``not_sent`` where not sent.

    Example:
        >>> out = ij.enqueue_tickets(rows, ledger="tickets.sqlite", ticket_type_id="88")
        ...                                                           # doctest: +SKIP
    """
    hide_token(options)
    from ._client import Client  # the client's method calls `enqueue`, below

    with Client(**options) as client:
        return client.enqueue_tickets(
            rows,
            ledger=ledger,
            ticket_type_id=ticket_type_id,
            key=key,
            resend_unknown=resend_unknown,
        )


def enqueue(
    rows: Any,
    options: Options,
    *,
    ledger: str | os.PathLike[str],
    ticket_type_id: str | int | None = None,
    key: str | None = None,
    resend_unknown: bool = False,
) -> pd.DataFrame:
    """`enqueue_tickets` with checked options (`Client.enqueue_tickets`)."""
    if options.tokens is not None and len(options.tokens) > 1:
        raise ConfigurationError(
            "enqueue_tickets is for one workspace at a time: call it per workspace with its token"
        )
    frame, keys, bodies = ticket_bodies(rows, ticket_type_id=ticket_type_id, key=key)
    encoded = [
        (json.dumps(b, separators=(",", ":")).encode(), Body.of(b)) if isinstance(b, dict) else None
        for b in bodies
    ]
    by_content = key is None and KEY_COLUMN not in frame.columns
    with Ledger(os.fspath(ledger), options.base_url) as book:
        if by_content and book.positional_keys:
            raise ConfigurationError(_POSITIONAL_KEYS.format(ledger=os.fspath(ledger)))

        def prepare(run: Run[EnqueueRow]) -> None:
            book.bind(run.identify())
            book.settle_interrupted()
            known = book.entries()
            for i, row_key in enumerate(keys):
                body = bodies[i]
                if isinstance(body, str):
                    run.rows[i] = EnqueueRow.of(row_key, REJECTED, code=INVALID_ROW, message=body)
                    continue
                entry = known.get(row_key)
                if entry is not None:
                    sent = encoded[i]
                    assert sent is not None
                    run.rows[i] = _known(entry, sent[1], resend_unknown)

        work = EnqueueWork(frame, keys, encoded, book)
        return Run(work, len(keys), options).execute(prepare)


_POSITIONAL_KEYS = (
    "the ledger {ledger!r} was written by intercom-jobs-nb 0.1, which keyed rows without a "
    "'key' column by their row number (0, 1, 2...); this version keys them by content, so "
    "those rows would look new and be sent again. Add a 'key' column holding each row's number "
    "as it was in that run (df['key'] = df.index.astype(str) if the rows have not moved since), "
    "or use a new ledger for a new sheet"
)


def _known(entry: tuple[EnqueueRow, Body | None], body: Body, resend_unknown: bool) -> Any:
    """What a key the ledger knows becomes in this run: its row from the ledger, a
    ``key_changed`` rejection, or None (send it)."""
    row, sent = entry
    same = sent is None or sent.fingerprint == body.fingerprint  # schema 1: taken as is
    status = row.enqueue_status
    if status == REJECTED:
        if not same:
            return None  # nothing was created: the corrected body is sent
        return row._replace(
            enqueue_error_message=f"{row.enqueue_error_message or 'rejected'} (in an earlier "
            "run; the row is unchanged, so it was not sent again: correct it and run again)"
        )
    if status == UNKNOWN and resend_unknown:
        return None
    if same:
        return row
    assert sent is not None
    fields = sorted({_FIELD_COLUMNS.get(name, _column_of(name)) for name in body.changed(sent)})
    job = f", job {row.job_id}" if row.job_id else ""
    return EnqueueRow.of(
        row.key,
        REJECTED,
        code=KEY_CHANGED,
        message=(
            f"key {row.key!r} was sent before ({status}{job}) with another body; changed: "
            f"{', '.join(fields)}. It was not sent again. To make a new ticket, give the row a "
            "new key; to keep the one made, restore the row as it was"
        ),
    )


def _column_of(field: str) -> str:
    """The input column a body field comes from."""
    prefix = "ticket_attributes."
    return _ATTR + field[len(prefix) :] if field.startswith(prefix) else field
