"""Checkpoints: rows saved to SQLite as they arrive, so a long run can stop and resume.

SQLite (the standard library's, an embedded file, no server) in WAL mode: each batch of rows is
one committed transaction, which survives a killed kernel or a crash (though not a power cut
mid-write: ``synchronous=NORMAL`` trades that for speed). A run started again with the same file
asks Intercom only for the jobs not final there. The file holds the API host it was made for and
the rows, never the token.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .errors import ConfigurationError
from .frames import to_frame
from .transport import COLUMNS, is_final_row

SCHEMA_VERSION = "1"
_PLACEHOLDERS = ", ".join("?" * (len(COLUMNS) + 1))
_NAMES = ", ".join(COLUMNS)


class Checkpoint:
    """One checkpoint file. Use as a context manager.

    Args:
        path: the SQLite file (created if missing).
        base_url: the API host the rows come from; a file made for another host is refused,
            since job ids are only unique within one workspace.
    """

    def __init__(self, path: str | os.PathLike, base_url: str) -> None:
        self.path = Path(path).expanduser()
        if not self.path.parent.is_dir():
            raise ConfigurationError(f"cannot create checkpoint {str(self.path)!r}: no such folder")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS jobs (
                    {COLUMNS[0]} TEXT PRIMARY KEY,
                    {", ".join(COLUMNS[1:])},
                    final INTEGER NOT NULL
                ) WITHOUT ROWID;
                """
            )
            stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(
                f"{str(self.path)!r} is not a usable checkpoint file: {exc}") from None
        if stored.get("base_url", base_url) != base_url:
            raise ConfigurationError(
                f"checkpoint {str(self.path)!r} was made for {stored['base_url']}, not {base_url}: "
                "job ids are per workspace, use another file"
            )
        if not stored:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [("base_url", base_url), ("schema", SCHEMA_VERSION)])

    def write(self, rows: Iterable[tuple]) -> None:
        """Save rows (replacing older rows of the same jobs) in one transaction."""
        db = self._db
        if db.in_transaction:  # a write cut short by Ctrl-C: it is written again whole
            db.execute("ROLLBACK")
        db.execute("BEGIN")
        try:
            db.executemany(f"INSERT OR REPLACE INTO jobs ({_NAMES}, final) "
                           f"VALUES ({_PLACEHOLDERS})",
                           ((*row, is_final_row(row)) for row in rows))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def final_rows(self) -> dict[str, tuple]:
        """The saved rows that will not change, by job id."""
        cursor = self._db.execute(f"SELECT {_NAMES} FROM jobs WHERE final = 1")
        return {row[0]: row for row in cursor}

    def frame(self) -> pd.DataFrame:
        """Everything saved, as a jobs DataFrame (for a look at a run that stopped)."""
        return to_frame(self._db.execute(f"SELECT {_NAMES} FROM jobs").fetchall())

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

