"""The enqueue ledger: what was sent to ``POST /tickets/enqueue`` for each key, so that no key
ever makes two tickets.

What it guarantees, and on what conditions, is written once, in the README's "Never a duplicate
ticket": one writer per ledger (the file's lock, ``_locking.py``), and the ledger's files kept
together while a run has it open (``checkpoint.WorkspaceFile``).

A POST is not idempotent: a request that reached Intercom and whose answer was lost may have
created a ticket. So the ledger records each key's *intent* (state ``sending``) in a committed
transaction before its request leaves, and the answer after. A key found ``sending`` when a run
starts was cut off (a SIGKILL, a crash) between the two: it is ``unknown``, like a request whose
answer was lost, and never sent again unless the caller says so. A key is sent only when the
ledger has no row for it. Like a checkpoint, the file is bound to its API host and workspace.

Durable: the ledger commits with ``synchronous=FULL`` (SQLite fsyncs its WAL at every commit), so
a key's intent is on disk before its request leaves, power cut included.

A key means one ticket body: with its intent the ledger records the body's fingerprint (a
SHA-256 of its canonical JSON) and a short hash of each of its fields, so a later run can tell
that a key now stands for another body, and which fields changed (``_enqueue.py`` decides what
follows). Ledgers of schema 1 (before fingerprints) are upgraded in place: their keys have no
fingerprint, and are taken as they are.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from typing import Annotated, Any, NamedTuple

import pandas as pd

from ._checkpoint import WorkspaceFile
from ._errors import CheckpointError
from ._rows import UTC_TIME, Column, columns_of

__all__ = [
    "Ledger",
    "Body",
    "EnqueueRow",
    "ENQUEUED",
    "REJECTED",
    "UNKNOWN",
    "NOT_SENT",
    "SENDING",
    "ENQUEUE_STATUSES",
]

ENQUEUED = "enqueued"  # Intercom answered a job
REJECTED = "rejected"  # refused, by Intercom (400) or before sending (no contact...)
UNKNOWN = "unknown"  # may have reached Intercom, no clear answer: never resent by itself
NOT_SENT = "not_sent"  # the run stopped (or was held back) before sending it
SENDING = "sending"  # in the ledger only: the intent, written before the request leaves
#: The outcomes a row of `enqueue_tickets` can have.
ENQUEUE_STATUSES = (ENQUEUED, REJECTED, UNKNOWN, NOT_SENT)
_TEXT = Column("string")


class EnqueueRow(NamedTuple):
    """One key's enqueue outcome. Each field declares its column (`rows.Column`): in the frame
    of `enqueue_tickets` (its dtype) and in the ledger (its SQL)."""

    key: Annotated[str, _TEXT._replace(sql="TEXT PRIMARY KEY")]
    job_id: Annotated[str | None, _TEXT]
    enqueue_status: Annotated[str, Column(pd.CategoricalDtype(list(ENQUEUE_STATUSES)))]
    enqueue_error_code: Annotated[str | None, _TEXT]
    enqueue_error_message: Annotated[str | None, _TEXT]
    enqueue_request_id: Annotated[str | None, _TEXT]
    enqueued_at: Annotated[float | None, Column(UTC_TIME)]
    #: False only for not_sent (a later call sends it): follows from the status, kept nowhere.
    final: Annotated[bool, Column(None, sql=None)]

    @classmethod
    def of(
        cls,
        key: str,
        status: str,
        *,
        job_id: str | None = None,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        at: float | None = None,
    ) -> EnqueueRow:
        return cls(
            key=key,
            job_id=job_id,
            enqueue_status=status,
            enqueue_error_code=code,
            enqueue_error_message=message,
            enqueue_request_id=request_id,
            enqueued_at=at,
            final=status != NOT_SENT,
        )


_STORED = tuple(c for c in columns_of(EnqueueRow) if c.sql is not None)
_FIELDS = tuple(c.name for c in _STORED)  # what the ledger stores of a row
_ANSWER = tuple(name for name in _FIELDS if name != "key")  # what an answer sets


class Body(NamedTuple):
    """A ticket body as the ledger knows it: its fingerprint, and a short hash per field."""

    fingerprint: str
    fields: dict[str, str]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Body:
        """The fingerprint of a body, and of each field (each ticket attribute on its own)."""
        flat: dict[str, Any] = {k: v for k, v in body.items() if k != "ticket_attributes"}
        for name, value in (body.get("ticket_attributes") or {}).items():
            flat[f"ticket_attributes.{name}"] = value
        return cls(
            _digest(body),
            {name: _digest(value)[:16] for name, value in flat.items()},
        )

    def changed(self, other: Body) -> list[str]:
        """The fields (as the body names them) whose value differs between two bodies."""
        names = set(self.fields) | set(other.fields)
        return sorted(n for n in names if self.fields.get(n) != other.fields.get(n))


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger(WorkspaceFile):
    """One ledger file. Thread-safe: workers write intents and answers as they go.

    Args:
        path: the SQLite file (created if missing).
        base_url: the API host; a ledger made for another host is refused.
    """

    KIND = "ledger"
    #: 1: before fingerprints; 2: each key's body fingerprint and field hashes.
    SCHEMA = "2"
    TABLES = {
        "keys": ", ".join(f"{c.name} {c.sql}".rstrip() for c in _STORED)
        + ", sent_count INTEGER NOT NULL DEFAULT 0, body_fingerprint TEXT, body_fields TEXT"
    }
    SYNCHRONOUS = "FULL"
    #: Schema 1 ledgers gain the fingerprint columns, and are marked as written by a version
    #: that keyed rows without a ``key`` column by their position (``positional_keys``).
    UPGRADES = {
        "1": "ALTER TABLE keys ADD COLUMN body_fingerprint TEXT; "
        "ALTER TABLE keys ADD COLUMN body_fields TEXT; "
        "INSERT OR REPLACE INTO meta VALUES ('positional_keys', '1')"
    }

    def __init__(self, path: str, base_url: str) -> None:
        super().__init__(path, base_url)
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:  # never while a worker writes
            self._closed = True
            super().close()

    def _commit(self, sql: str, params: Iterable[object]) -> None:
        with self._lock:
            if self._closed:
                raise CheckpointError(f"ledger {str(self.path)!r} is closed: the run has ended")
            try:
                self._db.execute(sql, tuple(params))
            except sqlite3.Error as exc:
                raise CheckpointError(
                    f"cannot write to ledger {str(self.path)!r} ({exc}); nothing more is sent"
                ) from None

    def settle_interrupted(self) -> int:
        """Keys left ``sending`` by a run that died: they become ``unknown``. Returns how many."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE keys SET enqueue_status = ?, enqueue_error_code = ?, "
                "enqueue_error_message = ? WHERE enqueue_status = ?",
                (
                    UNKNOWN,
                    "interrupted",
                    "the run stopped while this request may have been in flight; it may or may "
                    "not have created a ticket",
                    SENDING,
                ),
            )
            return cursor.rowcount

    def intend(self, key: str, body: Body) -> None:
        """Record, durably, that ``key`` is about to be sent with ``body``."""
        self._commit(
            "INSERT INTO keys (key, enqueue_status, sent_count, body_fingerprint, body_fields) "
            "VALUES (?, ?, 1, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET enqueue_status = excluded.enqueue_status, "
            "sent_count = sent_count + 1, body_fingerprint = excluded.body_fingerprint, "
            "body_fields = excluded.body_fields",
            (key, SENDING, body.fingerprint, json.dumps(body.fields, sort_keys=True)),
        )

    def forget(self, key: str) -> None:
        """``key`` was not sent after all (the run stopped, or 429: Intercom did not take it)."""
        self._commit(
            "UPDATE keys SET enqueue_status = ?, sent_count = sent_count - 1 "
            "WHERE key = ? AND enqueue_status = ?",
            (NOT_SENT, key, SENDING),
        )

    def record(self, row: EnqueueRow) -> None:
        """Record the answer for a key."""
        if row.enqueue_status == NOT_SENT:
            self.forget(row.key)
            return
        self._commit(
            "UPDATE keys SET " + ", ".join(f"{name} = ?" for name in _ANSWER) + " WHERE key = ?",
            (*(getattr(row, name) for name in _ANSWER), row.key),
        )

    def rows(self) -> dict[str, EnqueueRow]:
        """The last outcome of every key ever sent (``not_sent`` ones left out)."""
        return {key: row for key, (row, _) in self.entries().items()}

    def entries(self) -> dict[str, tuple[EnqueueRow, Body | None]]:
        """The last outcome of every key ever sent, and the body it was sent with (None in a
        ledger upgraded from schema 1); ``not_sent`` ones left out.

        Raises:
            CheckpointError: the ledger cannot be read (damaged): nothing may be sent.
        """
        with self._lock:
            try:
                stored = self._db.execute(
                    f"SELECT {', '.join(_FIELDS)}, body_fingerprint, body_fields FROM keys "
                    "WHERE enqueue_status != ?",
                    (NOT_SENT,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise CheckpointError(
                    f"cannot read ledger {str(self.path)!r} ({exc}): without what it recorded, "
                    "nothing is sent"
                ) from None
        found = {}
        for *values, fingerprint, fields in stored:
            record = dict(zip(_FIELDS, values, strict=True))
            row = EnqueueRow.of(record["key"], record["enqueue_status"])._replace(**record)
            body = None
            if fingerprint is not None:
                body = Body(fingerprint, json.loads(fields or "{}"))
            found[row.key] = (row, body)
        return found

    @property
    def positional_keys(self) -> bool:
        """Whether a version that keyed key-less rows by position wrote to this ledger."""
        with self._lock:
            found = self._db.execute("SELECT 1 FROM meta WHERE key = 'positional_keys'")
            return found.fetchone() is not None and self.has_keys()

    def has_keys(self) -> bool:
        return self._db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def sent_counts(self) -> dict[str, int]:
        """How many times each key was sent (for tests and audits: never more than once unless
        ``resend_unknown``)."""
        with self._lock:
            return dict(self._db.execute("SELECT key, sent_count FROM keys"))

    def __enter__(self) -> Ledger:
        return self
