"""The JobsPanel's ids input: the text box, ids given in code or uploaded (kept exactly), and
their workspaces in a panel of many. No widgets; nothing here runs in the run's thread."""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import _errors as E
from ._engine import check_workspaces
from ._format import number
from ._ids import ID_FILE_SUFFIXES, JobIds, read_ids_file, read_job_ids
from ._options import Secret
from ._panel_table import Note

__all__ = ["IdsInput", "parse_ids"]

_ID_SEPARATORS = re.compile(r"[\s,;]+")


def parse_ids(text: str) -> list[str]:
    """Job ids from pasted text: separated by spaces, commas, semicolons or lines; distinct.

    Quotes around ids are dropped (ids pasted from a Python list or a CSV row work).

    Example:
        >>> parse_ids('1001, "1002"\\n1001 1003')
        ['1001', '1002', '1003']
    """
    seen: dict[str, None] = {}
    for part in _ID_SEPARATORS.split(text or ""):
        token = part.strip().strip("\"'[]()")
        if token:
            seen.setdefault(token, None)
    return list(seen)


class IdsInput:
    """The ids a refresh asks for.

    Args:
        tokens: the tokens of a panel of many workspaces (its ids come with a workspace each,
            from code or an uploaded .csv), else None.
    """

    def __init__(self, tokens: Mapping[str, Secret] | None = None) -> None:
        self._tokens = tokens
        self._text = ""
        self._kept: list[str] | None = None  # ids given or uploaded, exactly
        self._workspaces: list[str] | None = None  # of the kept ids, in a panel of many
        self.upload_count = 0  # ids read from the last uploaded file
        self.upload_note = Note()

    @property
    def many(self) -> bool:
        return self._tokens is not None

    @property
    def ids(self) -> list[str]:
        """The ids given or uploaded, exactly, while the text box still shows them; else the
        ids in the text box."""
        if self._kept is not None:
            return list(self._kept)
        return parse_ids(self._text)

    @property
    def workspaces(self) -> list[str] | None:
        """In a panel of many workspaces, the workspace of each of `ids`; else None."""
        return None if self._workspaces is None else list(self._workspaces)

    @property
    def text(self) -> str:
        """The text box's contents."""
        return self._text

    def job_ids(self) -> JobIds:
        """What a refresh asks for, checked (with the workspaces, in a panel of many)."""
        if self._workspaces is None:
            return read_job_ids(self.ids)
        return read_job_ids(pd.DataFrame({"workspace": self._workspaces, "job_id": self.ids}))

    def set_text(self, text: str) -> bool:
        """The person edited the text box: its ids are the ones asked for from now on.
        Returns whether anything changed.

        Raises:
            ConfigurationError: in a panel of many workspaces (its box is read-only).
        """
        if text == self._text:
            return False
        if self.many:
            raise E.ConfigurationError(
                "this panel runs many workspaces: give its ids with their workspaces "
                "(set_ids of a DataFrame, or upload a .csv with a workspace column)"
            )
        self._text = text
        self._kept = None
        return True

    def set(self, ids: Any) -> None:
        """Use these ids, exactly (anything `fetch_jobs` takes).

        Raises:
            ConfigurationError: the ids cannot be read, or do not fit the panel's tokens.
        """
        self._keep(self._checked(read_job_ids(ids)))

    def _checked(self, job_ids: JobIds) -> JobIds:
        if job_ids.ids:
            check_workspaces(job_ids.workspaces, self._tokens)
        return job_ids

    def _keep(self, job_ids: JobIds) -> None:
        self._kept = list(job_ids.ids)
        if self._tokens is None:
            self._workspaces = None
            self._text = "\n".join(self._kept)
        else:
            self._workspaces = list(job_ids.workspaces or [])
            self._text = "\n".join(
                f"{w},{j}" for w, j in zip(self._workspaces, self._kept, strict=True)
            )

    def upload(self, files: Iterable[Mapping[str, Any]]) -> bool:
        """Read uploaded files (``name`` and ``content`` each); their ids are kept exactly.
        The upload note says what happened. Returns whether the ids changed."""
        try:
            joined, names, repeated = self._read_files(files)
        except E.ConfigurationError as exc:
            self.upload_note = Note(str(exc), "error")
            return False
        self._keep(joined)
        self.upload_count = len(joined.ids)
        skipped = f" ({number(repeated)} repeated rows skipped)" if repeated else ""
        self.upload_note = Note(
            f"Read {number(len(joined.ids))} job ids from {', '.join(names)}{skipped}.", "info"
        )
        return True

    def _read_files(self, files: Iterable[Mapping[str, Any]]) -> tuple[JobIds, list[str], int]:
        parts: list[JobIds] = []
        names: list[str] = []
        for item in files:
            name = str(item["name"])
            parts.append(self._read_file(name, bytes(item["content"])))
            names.append(name)
        if not any(len(part) for part in parts):
            raise E.ConfigurationError(f"{', '.join(names) or 'the upload'} holds no job ids")
        frames = [
            pd.DataFrame(
                {"job_id": list(part.ids)}
                if part.workspaces is None
                else {"workspace": part.workspaces, "job_id": list(part.ids)},
                dtype=object,
            )
            for part in parts
        ]
        joined = self._checked(read_job_ids(pd.concat(frames, ignore_index=True)))
        return joined, names, sum(part.duplicates for part in parts)

    def _read_file(self, name: str, content: bytes) -> JobIds:
        suffix = Path(name).suffix.lower()
        if suffix not in ID_FILE_SUFFIXES:
            raise E.ConfigurationError(f"{name}: upload a .csv or .txt file of job ids")
        with tempfile.TemporaryDirectory(prefix="ij-upload-") as folder:
            path = Path(folder) / f"ids{suffix}"
            path.write_bytes(content)
            with warnings.catch_warnings():  # said in the note instead
                warnings.simplefilter("ignore")
                # The file reader's rules (encoding included), its messages naming the file
                # the person chose, not this temporary copy.
                job_ids = read_ids_file(path, name=name)
        try:
            return self._checked(job_ids)
        except E.ConfigurationError as exc:
            raise E.ConfigurationError(f"{name}: {exc}") from None
