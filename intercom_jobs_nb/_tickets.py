"""Tickets: the ticket behind every successful job (``GET /tickets/{id}``), into the frame.

`fetch_tickets` asks, once per distinct ticket, through the one run engine (the same workers,
pacing, retries, bounds and progress as job statuses), and adds to each row with a successful
job the ticket's columns. Every answer is read defensively, as job statuses are; a ticket that
could not be read is a row with ``ticket_error_code`` set, never an exception.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import pandas as pd

from . import _codes as C
from ._checkpoint import WorkspaceFile
from ._engine import Run
from ._errors import CheckpointError, ConfigurationError, FetchInterrupted, RunAbortedError
from ._ids import check_job_id
from ._options import Options, hide_token
from ._pacing import Pacer
from ._rows import UTC_TIME, Column, columns_of, typed
from ._transport import (
    MAX_FIELD,
    READ,
    Answer,
    Channel,
    TransportFailure,
    ask,
    parse_json,
    read_error,
    text_field,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = ["fetch_tickets", "TICKET_COLUMNS", "TICKET_NOT_FOUND", "MAX_ATTRIBUTES"]

TICKET_PATH = "/tickets/"
TICKET_NOT_FOUND = "ticket_not_found"
MAX_ATTRIBUTES = 200  # attributes kept per ticket
_ATTR = "attr:"


_TEXT = Column("string")
_TIME = Column(UTC_TIME)
_NOT_A_COLUMN = Column(None)  # read by the code that spreads the tickets over the rows


class TicketRow(NamedTuple):
    """One ticket as read (or why it could not be). ``http_status``, ``error_code`` and
    ``final`` are named as the engine's retries expect. Each field declares the column
    `fetch_tickets` adds for it (`rows.Column`), if any."""

    resource_id: Annotated[str, _NOT_A_COLUMN]
    ticket_id: Annotated[str | None, _TEXT]
    ticket_state: Annotated[str | None, Column("category")]
    ticket_state_label: Annotated[str | None, _TEXT]
    ticket_type: Annotated[str | None, _TEXT]
    ticket_open: Annotated[bool | None, Column("boolean")]
    ticket_created_at: Annotated[float | None, _TIME]
    ticket_updated_at: Annotated[float | None, _TIME]
    admin_assignee_id: Annotated[str | None, _TEXT]
    team_assignee_id: Annotated[str | None, _TEXT]
    attributes: Annotated[dict[str, Any] | None, _NOT_A_COLUMN]  # the ``attr:<name>`` columns
    http_status: Annotated[int | None, Column("Int16", frame_name="ticket_http_status")]
    error_code: Annotated[str | None, Column("category", frame_name="ticket_error_code")]
    error_message: Annotated[str | None, _TEXT._replace(frame_name="ticket_error_message")]
    final: Annotated[bool, _NOT_A_COLUMN]


_DECLARED = tuple(c for c in columns_of(TicketRow) if c.dtype is not None)
#: The columns `fetch_tickets` adds (before the ``attr:<name>`` ones).
TICKET_COLUMNS = tuple(c.label for c in _DECLARED)


def _failed(resource_id: str, code: str, message: str, http_status: int | None = None) -> TicketRow:
    return TicketRow(
        resource_id=resource_id,
        ticket_id=None,
        ticket_state=None,
        ticket_state_label=None,
        ticket_type=None,
        ticket_open=None,
        ticket_created_at=None,
        ticket_updated_at=None,
        admin_assignee_id=None,
        team_assignee_id=None,
        attributes=None,
        http_status=http_status,
        error_code=code,
        error_message=message,
        final=not C.is_transient(http_status, code),
    )


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value < 1e11 else None


def _attributes(value: Any) -> dict[str, Any] | None:
    """Ticket attributes whose names are short strings and whose values are small JSON."""
    if not isinstance(value, dict):
        return None
    kept: dict[str, Any] = {}
    for name, item in list(value.items())[:MAX_ATTRIBUTES]:
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            continue
        if item is None or isinstance(item, (bool, int, float, str)):
            if isinstance(item, str) and len(item) > MAX_FIELD:
                continue
            kept[name] = item
        elif len(json.dumps(item, default=str)) <= MAX_FIELD:  # lists, files: kept as JSON text
            kept[name] = json.dumps(item, default=str)
    return kept


def read_ticket(resource_id: str, answer: Answer, options: Options) -> TicketRow:
    """One answer about ticket ``resource_id`` as a row.

    Raises:
        Fatal: the token or API version was rejected.
    """
    status = answer.status
    if answer.problem is not None:
        return _failed(resource_id, C.INVALID_RESPONSE, answer.problem, status)
    body = parse_json(answer.body)
    if status == 200:
        if not isinstance(body, dict):
            return _failed(resource_id, C.INVALID_RESPONSE, "the answer is not a JSON object", 200)
        if text_field(body.get("id"), 128) != resource_id:
            return _failed(resource_id, C.INVALID_RESPONSE, "the answer is for another ticket", 200)
        state = body.get("ticket_state")
        state = state if isinstance(state, dict) else {}
        kind = body.get("ticket_type")
        kind = kind if isinstance(kind, dict) else {}
        is_open = body.get("open")
        return TicketRow(
            resource_id=resource_id,
            ticket_id=text_field(body.get("ticket_id"), 128),
            ticket_state=text_field(state.get("category"), 128),
            ticket_state_label=text_field(state.get("internal_label"), 256),
            ticket_type=text_field(kind.get("name"), 256),
            ticket_open=is_open if isinstance(is_open, bool) else None,
            ticket_created_at=_time(body.get("created_at")),
            ticket_updated_at=_time(body.get("updated_at")),
            admin_assignee_id=text_field(body.get("admin_assignee_id"), 128),
            team_assignee_id=text_field(body.get("team_assignee_id"), 128),
            attributes=_attributes(body.get("ticket_attributes")),
            http_status=200,
            error_code=None,
            error_message=None,
            final=True,
        )
    code, message, _ = read_error(answer, body, options)
    return _failed(resource_id, code, message, status)


class TicketCheckpoint(WorkspaceFile):
    """Tickets saved as they are read, so a long `fetch_tickets` can stop and resume (bound to
    its host and workspace, like a job-status checkpoint)."""

    KIND = "ticket checkpoint"
    SCHEMA = "1"
    TABLES = {"tickets": "resource_id TEXT PRIMARY KEY, row TEXT NOT NULL, final INTEGER"}

    def write(self, rows: list[TicketRow]) -> None:
        """Save rows in one transaction.

        Raises:
            CheckpointError: they could not be written.
        """
        db = self._db
        try:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT OR REPLACE INTO tickets VALUES (?, ?, ?)",
                    [(row.resource_id, json.dumps(row), row.final) for row in rows],
                )
        except sqlite3.Error as exc:
            raise CheckpointError(
                f"cannot write to ticket checkpoint {str(self.path)!r} ({exc}); every ticket "
                "read is on .df"
            ) from None

    def rows(self) -> dict[str, TicketRow]:
        """The saved tickets that will not change, by id."""
        cursor = self._db.execute("SELECT row FROM tickets WHERE final = 1")
        # A row is stored as the JSON list of its fields, in their order.
        return {row.resource_id: row for row in (TicketRow._make(json.loads(r)) for (r,) in cursor)}

    def __enter__(self) -> TicketCheckpoint:
        return self


class TicketsWork:
    """One ``GET /tickets/{id}`` per distinct ticket (the engine's `Work`)."""

    desc = "tickets"
    kinds: tuple[str, ...] = ("read", "errors")

    def __init__(self, resource_ids: list[str]) -> None:
        self.resource_ids = resource_ids

    @staticmethod
    def outcome(row: TicketRow) -> str:
        return "errors" if row.error_code is not None else "read"

    def ask(self, client: Channel, gate: Pacer, index: int) -> TicketRow:
        resource_id = self.resource_ids[index]
        options = client.options

        def read(answer: Answer, attempts: int) -> TicketRow:
            return read_ticket(resource_id, answer, options)

        def failed(failure: TransportFailure, attempts: int) -> TicketRow:
            return _failed(resource_id, failure.code, failure.message)

        checked, problem = check_job_id(resource_id)  # the same rule as job ids
        if problem or checked != resource_id:
            return _failed(
                resource_id,
                C.INVALID_RESPONSE,
                f"the job names a ticket id that {problem or 'is not plain'}; it was not asked",
            )
        return ask(client, gate, TICKET_PATH + resource_id, read, failed, READ)

    def frame(self, rows: list[TicketRow | None], consume: bool) -> pd.DataFrame:
        return pd.DataFrame.from_records(
            [row for row in rows if row is not None], columns=TicketRow._fields
        )


def _ticket_columns(tickets: pd.DataFrame, wanted: pd.Series) -> pd.DataFrame:
    """The ticket columns for each row of the input (``wanted``: its resource ids, NA where no
    ticket was asked), attributes spread into ``attr:<name>`` columns."""
    by_id = tickets.set_index("resource_id") if len(tickets) else tickets
    rows: list[dict[str, Any]] = []
    for resource_id in wanted:
        if resource_id is None or resource_id is pd.NA or resource_id not in by_id.index:
            rows.append({})
            continue
        ticket = by_id.loc[resource_id]
        record = {c.label: ticket[c.name] for c in _DECLARED}
        for name, value in (ticket["attributes"] or {}).items():
            record[_ATTR + name] = value
        rows.append(record)
    out = pd.DataFrame.from_records(rows, index=range(len(rows)))
    for column in _DECLARED:
        if column.label not in out.columns:
            out[column.label] = None
        out[column.label] = typed(out[column.label], column.dtype)
    attrs = [c for c in out.columns if c not in TICKET_COLUMNS]
    return out[[*TICKET_COLUMNS, *attrs]]


def fetch_tickets(
    df: pd.DataFrame,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    **options: Unpack[ClientOptions],
) -> pd.DataFrame:
    """The ticket behind every successful job, as columns added to ``df``.

    Asks ``GET /tickets/{resource_id}`` once per distinct ticket of the rows whose job
    succeeded, and adds ``ticket_id`` (the human id), ``ticket_state`` (category),
    ``ticket_state_label`` (its internal label), ``ticket_type`` (name), ``ticket_open``,
    ``ticket_created_at``, ``ticket_updated_at`` (UTC), ``admin_assignee_id``,
    ``team_assignee_id``, ``ticket_http_status``, ``ticket_error_code``,
    ``ticket_error_message``, and each ticket attribute as ``attr:<name>`` (the ticket's value
    wins over an input column of the same name). Rows without a successful job get empty ticket
    columns. Takes the options of `fetch_jobs`; ``checkpoint`` is a SQLite file where tickets
    are saved as they are read, and final ones are not asked again.

    Raises:
        ConfigurationError: ``df`` has no ``status``/``resource_id`` columns (pass the frame of
            `fetch_jobs` or `wait_for_jobs`).
        AuthenticationError, ApiVersionError, UnreachableError, FetchInterrupted,
            RunFailedError: ``.df`` has the tickets read so far (one row per ticket).
    """
    hide_token(options)
    from ._client import Client  # the client's method calls `tickets_for`, below

    with Client(**options) as client:
        return client.fetch_tickets(df, checkpoint=checkpoint)


def tickets_for(
    df: pd.DataFrame, options: Options, *, checkpoint: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """`fetch_tickets` with checked options (`Client.fetch_tickets`)."""
    if not isinstance(df, pd.DataFrame) or not {"status", "resource_id"} <= set(df.columns):
        raise ConfigurationError(
            "fetch_tickets needs the frame of fetch_jobs or wait_for_jobs (status, resource_id)"
        )
    if "workspace" in df.columns and df["workspace"].nunique() > 1:
        raise ConfigurationError(
            "fetch_tickets is for one workspace at a time (a ticket id is only unique within "
            "its workspace): call it per workspace, e.g. df[df['workspace'] == 'acme'] with "
            "that workspace's token"
        )
    if options.tokens is not None and len(options.tokens) > 1:
        raise ConfigurationError(
            "fetch_tickets is for one workspace at a time: call it per workspace with its token"
        )
    succeeded = (df["status"] == "success").fillna(False) & df["resource_id"].notna()
    if "resource_type" in df.columns:
        kind = df["resource_type"].astype(object)
        succeeded &= kind.isna() | (kind == "ticket")
    # Ids read as the job-id rule reads them (a CSV read back makes 5001 a float 5001.0).
    wanted = pd.Series(
        [
            check_job_id(v)[0] if ok else None
            for v, ok in zip(df["resource_id"], succeeded, strict=True)
        ],
        dtype="string",
    )
    resource_ids = list(
        dict.fromkeys(v for v in wanted.tolist() if v is not None and v is not pd.NA)
    )
    book = TicketCheckpoint(checkpoint, options.base_url) if checkpoint is not None else None

    def prepare(run: Run[TicketRow]) -> None:
        if book is not None:  # bound to the token's workspace before any ticket is asked
            book.bind(run.identify())
            saved = book.rows()
            for i, resource_id in enumerate(resource_ids):
                run.rows[i] = saved.get(resource_id)

    try:
        work = TicketsWork(resource_ids)
        sink = book.write if book is not None else None
        tickets = Run(work, len(resource_ids), options, sink=sink).execute(prepare)
    except (RunAbortedError, FetchInterrupted) as exc:
        if exc.df is not None:  # the input rows, with the tickets read so far
            exc.df = _with_tickets(df, exc.df, wanted)
        raise
    finally:
        if book is not None:
            book.close()
    return _with_tickets(df, tickets, wanted)


def _with_tickets(df: pd.DataFrame, tickets: pd.DataFrame, wanted: pd.Series) -> pd.DataFrame:
    columns = _ticket_columns(tickets, wanted.reset_index(drop=True))
    base = df.reset_index(drop=True).copy()
    for column in [c for c in columns.columns if c in base.columns]:
        if column in TICKET_COLUMNS:  # ours: replaced
            base = base.drop(columns=column)
        else:  # an attribute: the ticket's value wins where the ticket has one
            ticket = columns.pop(column)
            base[column] = ticket.where(ticket.notna(), base[column])
    out = pd.concat([base, columns], axis=1)
    out.index = df.index
    return out
