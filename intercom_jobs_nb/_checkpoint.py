"""Checkpoints: rows saved to SQLite as they arrive, so a long run can stop and resume.

SQLite (the standard library's, an embedded file, no server) in WAL mode: each batch of rows is
one committed transaction, which survives a killed kernel or a crash (though not a power cut
mid-write: ``synchronous=NORMAL`` trades that for speed). A run started again with the same file
asks Intercom only for the jobs not final there.

A checkpoint belongs to one workspace. Job ids are only unique within a workspace, and two
workspaces can share a region host, so the file records the API host *and* the workspace that
``GET /me`` names for the token (Intercom's ``app.id_code``), and refuses, before any job is
asked, a token of another workspace. Why ``/me`` and not a salted hash of the token: the hash
would refuse the same workspace's rotated or second token, and would keep something derived
from the secret on disk; ``/me`` costs one request a run and names what actually matters.

The file holds the schema version it was written with; a file of another version, or a file
that is not a checkpoint at all, is refused with a message and left exactly as it was.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from ._errors import CheckpointError, ConfigurationError
from ._locking import WriterLock, describe_run, this_run
from ._options import __version__
from ._rows import COLUMNS, DECLARED, Row, to_frame

__all__ = ["Checkpoint", "WorkspaceFile", "damaged", "SCHEMA_VERSION", "row_from_db", "SELECT_ROWS"]

#: Version of the file layout. 1: before 0.2 (no workspace); 2: workspace-bound, ``final`` a
#: column of the rows; 3: rows keyed by (workspace, job_id), each workspace bound to its own.
SCHEMA_VERSION = "3"
#: A row's key in the checkpoint. A run of one workspace stores its rows under the workspace ''
#: (a key column cannot be NULL), read back as None.
_KEY = ("workspace", "job_id")
_BLANK_AS_NONE = "workspace"
# Rows are written and read by column name: the table's own column order does not matter.
_NAMES = ", ".join(COLUMNS)
_PLACEHOLDERS = ", ".join("coalesce(?, '')" if c == _BLANK_AS_NONE else "?" for c in COLUMNS)
_SELECT = ", ".join(f"nullif({c}, '')" if c == _BLANK_AS_NONE else c for c in COLUMNS)


def _inspect(path: Path, tables: frozenset[str], noun: str) -> dict[str, str]:
    """The meta table of an existing file, read without changing it.

    Raises:
        ConfigurationError: the file is not one of ours.
    """
    meta: dict[str, str] | None = None
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise _not_ours(path, noun, "it is not an SQLite database")
    # immutable: read it as a file, without the -wal/-shm files SQLite would leave beside it.
    immutable = "" if path.with_name(path.name + "-wal").exists() else "&immutable=1"
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro{immutable}", uri=True)
        try:
            found = {
                name
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if {"meta", *tables} <= found:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if damaged(exc):  # an SQLite header, then pages that are not
            raise CheckpointError(_damaged_message(path, noun, exc)) from None
        raise _not_ours(path, noun, f"it is not an SQLite database ({exc})") from None
    if meta is None:
        raise _not_ours(path, noun, f"it has no {noun} tables")
    return meta


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite found the file itself damaged (SQLITE_CORRUPT, SQLITE_NOTADB), rather
    than busy, read-only or out of room (those are `sqlite3.OperationalError`)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _damaged_message(path: Path, noun: str, exc: sqlite3.Error) -> str:
    return (
        f"{noun} {str(path)!r} is damaged ({exc}): it cannot be trusted to say what was "
        "recorded in it, so nothing was sent. Restore it from a copy, or check what it "
        "recorded by other means before starting a new file. It was left unchanged"
    )


def _not_ours(path: Path, noun: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"{str(path)!r} is not a {noun} file: {why}. It was left unchanged; pass the path "
        f"of a new file, or of a {noun} this toolkit wrote"
    )


SELECT_ROWS = f"SELECT {_SELECT} FROM jobs"  # every row of a checkpoint, as `row_from_db` reads


def row_from_db(values: tuple[Any, ...]) -> Row:
    """A row as the checkpoint stores it (``final`` as 0/1) back into a `Row`."""
    row = Row._make(values)
    return row._replace(final=bool(row.final))


class WorkspaceFile:
    """An SQLite file of this toolkit bound to one API host and one workspace: checkpoints of
    job statuses, and ledgers of enqueued tickets. Subclasses name their kind and tables.

    One run at a time: opening the file takes its writer lock (``_locking.py``) until `close`.
    Whole when closed: a run records its rows in SQLite's WAL (``NAME-wal`` beside the file),
    and `close` folds that back into the file and removes it, so a file whose run ended (short
    of SIGKILL) is one file that can be copied, moved or attached alone. While a run has it
    open, the file is marked so (``open_run`` in its meta table, written through to the file
    itself); a file found marked, with no ``-wal`` beside it, is one whose run died and which
    was moved without what that run recorded: it is refused, never read as "nothing sent".
    What this cannot tell apart: another SQLite program that opened the file after the crash
    folded the ``-wal`` in and removed it (SQLite's last connection does). The file is then
    whole, yet refused the same way; the message says how to remove the mark in that case only.

    Raises:
        ConfigurationError: the folder does not exist, the file is not of this kind, was
            written with another schema version, or for another host.
        FileInUseError: another run has the file open.
        CheckpointError: it cannot be written (read-only, locked by another program, disk
            full), or its last run did not end cleanly and its ``-wal`` file is missing.
    """

    KIND = "checkpoint"
    SCHEMA = SCHEMA_VERSION
    TABLES: dict[str, str] = {}  # name -> column definitions
    #: SQLite's ``synchronous`` in WAL mode: NORMAL may lose the last commits to a power cut
    #: (a checkpoint then asks those jobs again); a ledger says FULL (each commit fsync'd).
    SYNCHRONOUS = "NORMAL"
    #: An older schema this version reads -> the SQL that brings it to `SCHEMA`.
    UPGRADES: dict[str, str] = {}

    def __init__(self, path: str | os.PathLike[str], base_url: str) -> None:
        self.path = Path(path).expanduser()
        noun, shown = self.KIND, str(self.path)
        if not self.path.parent.is_dir():
            raise ConfigurationError(f"cannot create {noun} {shown!r}: no such folder")
        if self.path.is_dir():
            raise ConfigurationError(f"{noun} {shown!r} is a folder, not a file")
        self._writer = WriterLock(self.path, noun)
        try:
            self._writer.acquire()  # before anything is read: another run may be writing
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use {noun} {shown!r}: its lock file {str(self._writer.path)!r} cannot "
                f"be made ({exc.strerror or exc}); the folder must be writable"
            ) from None
        try:
            self._open(base_url)
        except BaseException:
            self._writer.release()
            raise

    def _open(self, base_url: str) -> None:
        noun, shown = self.KIND, str(self.path)
        stored: dict[str, str] = {}
        if self.path.exists() and self.path.stat().st_size:
            stored = _inspect(self.path, frozenset(self.TABLES), noun)
        upgrade = None
        if stored:
            kind = stored.get("kind", "checkpoint")
            if kind != self.KIND:
                raise ConfigurationError(
                    f"{shown!r} is a {kind}, not a {noun}: use another file (it is unchanged)"
                )
            schema = stored.get("schema")
            upgrade = self.UPGRADES.get(schema or "")
            if schema != self.SCHEMA and upgrade is None:
                raise ConfigurationError(
                    f"{noun} {shown!r} was written with schema {schema or '?'} (by "
                    f"intercom-jobs-nb {stored.get('written_by', 'before 0.2')}); this version "
                    f"reads schema {self.SCHEMA} only. Use a new file (the old one is unchanged)"
                )
            if stored.get("base_url") != base_url:
                raise ConfigurationError(
                    f"{noun} {shown!r} was made for {stored.get('base_url')}, not "
                    f"{base_url}: ids are per workspace, use another file"
                )
            self._check_whole(stored.get("open_run"))
        try:
            if not stored:
                self._create(base_url)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(f"cannot use {noun} {shown!r}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self.SYNCHRONOUS}")
            if upgrade is not None:
                self._db.executescript(
                    f"BEGIN; {upgrade}; INSERT OR REPLACE INTO meta VALUES ('schema', "
                    f"'{self.SCHEMA}'); COMMIT;"
                )
            self._mark_open()
        except sqlite3.Error as exc:
            self._db.close()
            if damaged(exc):
                raise CheckpointError(_damaged_message(self.path, noun, exc)) from None
            raise CheckpointError(
                f"cannot write to {noun} {shown!r} ({exc}): check that the file and its "
                "folder are writable, that no other program holds it open, and that the disk "
                "is not full; nothing was sent"
            ) from None
        self.bound = {k: v for k, v in stored.items() if k.partition(":")[0] == "workspace"}
        self.workspace = stored.get("workspace")
        self.upgraded_from = stored.get("schema") if upgrade is not None else None

    def _check_whole(self, mark: str | None) -> None:
        """Refuse a file whose last run died and whose ``-wal`` did not come with it."""
        wal = self.path.with_name(self.path.name + "-wal")
        if mark is None or wal.exists():
            return  # closed cleanly, or SQLite recovers the died run's commits from the WAL
        who = describe_run(mark) or "details unreadable"
        raise CheckpointError(
            f"{self.KIND} {str(self.path)!r} was in use by a run that did not end cleanly "
            f"({who}), and {wal.name!r}, which holds what that run recorded, is not beside it: "
            f"without it this file would read as if that run had recorded nothing. Put "
            f"{wal.name!r} (and {self.path.name + '-shm'!r} if there is one) from the folder "
            "where that run took place next to it, then run again. The file is unchanged. (Only "
            "if another SQLite program opened this very file since that run died has it folded "
            f"the -wal in already; then, and only then, say so by removing the mark: python -c "
            f"\"import sqlite3; sqlite3.connect('{self.path.name}').execute('DELETE FROM meta "
            "WHERE key = \\'open_run\\'').connection.commit()\")"
        )

    def _mark_open(self) -> None:
        """Mark the file in use, in the file itself (not only its WAL), so that a copy of it
        alone after a crash is known to be incomplete."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('open_run', ?)", (this_run(),))
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _create(self, base_url: str) -> None:
        """Make the file whole beside its place, then link it there: a process killed while
        making it leaves no half-made file at ``path`` (only a ``.part`` one, removed next time)."""
        part = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        for stale in (part, part.with_name(part.name + "-wal"), part.with_name(part.name + "-shm")):
            stale.unlink(missing_ok=True)
        db = sqlite3.connect(part, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            tables = "".join(
                f"CREATE TABLE IF NOT EXISTS {name} ({columns}) WITHOUT ROWID;"
                for name, columns in self.TABLES.items()
            )
            db.executescript(
                "BEGIN; CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
                f"{tables} COMMIT;"
            )
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("kind", self.KIND),
                    ("base_url", base_url),
                    ("schema", self.SCHEMA),
                    ("written_by", __version__),
                ],
            )
        finally:
            db.close()  # the last connection: SQLite folds the WAL into the file
        try:
            if self.path.exists():  # an empty file given to us: ours to fill
                os.replace(part, self.path)
            else:
                os.link(part, self.path)  # never over a file another process just made
        finally:
            part.unlink(missing_ok=True)

    def bind(self, workspace: str, *, label: str | None = None) -> None:
        """Record the token's workspace (what ``/me`` names), or refuse a token of another one.

        A file of many workspaces binds each by its name in the run (``label``); a file of one
        has no names. The two kinds are not mixed.

        Raises:
            ConfigurationError: the file belongs to another workspace, or is of the other kind.
        """
        key = "workspace" if label is None else f"workspace:{label}"
        shown = str(self.path)
        if label is None and any(k != "workspace" for k in self.bound):
            raise ConfigurationError(
                f"{self.KIND} {shown!r} holds many workspaces' rows: pass the frame with its "
                "workspace column and tokens=, or use another file"
            )
        if label is not None and "workspace" in self.bound:
            raise ConfigurationError(
                f"{self.KIND} {shown!r} holds one workspace's rows, not named: use another file "
                "for a run of many workspaces"
            )
        stored = self.bound.get(key)
        if stored is None:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, workspace))
            self.bound[key] = workspace
            if label is None:
                self.workspace = workspace
        elif stored != workspace:
            whose = "this token's" if label is None else f"the token of {label!r}"
            raise ConfigurationError(
                f"{self.KIND} {shown!r} belongs to another workspace than {whose} (Intercom's "
                "/me names another app): its rows are not this workspace's. Use another file "
                "for this workspace"
            )

    def close(self) -> None:
        """Fold the WAL into the file, remove it and the lock: one whole file is left.

        A failure here (disk full) leaves the file as SQLite has it, marked in use: the next
        run recovers it from the WAL, and refuses a copy without it."""
        db = getattr(self, "_db", None)
        if db is None:
            return
        self._db = None  # type: ignore[assignment]
        try:
            try:
                if db.in_transaction:  # a write cut short by Ctrl-C: it was not committed
                    db.execute("ROLLBACK")
                db.execute("DELETE FROM meta WHERE key = 'open_run'")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.execute("PRAGMA journal_mode=DELETE")  # removes the -wal and -shm files
            except sqlite3.Error:
                pass
            db.close()
        finally:
            self._writer.release()

    def __enter__(self) -> WorkspaceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Checkpoint(WorkspaceFile):
    """One checkpoint file of job statuses. Use as a context manager.

    Args:
        path: the SQLite file (created if missing).
        base_url: the API host the rows come from; a file made for another host is refused.
    """

    KIND = "checkpoint"
    TABLES = {
        "jobs": ", ".join(
            [f"{c.name} {c.sql}".rstrip() for c in DECLARED] + [f"PRIMARY KEY ({', '.join(_KEY)})"]
        )
    }
    assert all(c.sql is not None for c in DECLARED)  # every result column is kept

    def __enter__(self) -> Checkpoint:
        return self

    def write(self, rows: Iterable[Row]) -> None:
        """Save rows (replacing older rows of the same jobs) in one transaction.

        Raises:
            CheckpointError: the rows could not be written (disk full, read-only...).
        """
        db = self._db
        try:
            if db.in_transaction:  # a write cut short by Ctrl-C: it is written again whole
                db.execute("ROLLBACK")
            db.execute("BEGIN")
            try:
                db.executemany(
                    f"INSERT OR REPLACE INTO jobs ({_NAMES}) VALUES ({_PLACEHOLDERS})", rows
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise CheckpointError(
                f"cannot write to checkpoint {str(self.path)!r} ({exc}); the rows committed "
                "before are in the file, and every row fetched is on .df"
            ) from None

    def rows(self) -> dict[tuple[str | None, str], Row]:
        """Every saved row, by (workspace, job id); the workspace is None in a run of one."""
        rows = (row_from_db(values) for values in self._db.execute(SELECT_ROWS))
        return {(row.workspace, row.job_id): row for row in rows}

    def frame(self) -> pd.DataFrame:
        """Everything saved, as a jobs DataFrame (for a look at a run that stopped)."""
        return to_frame(list(self.rows().values()))
