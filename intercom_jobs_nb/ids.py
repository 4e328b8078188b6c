"""Job ids in: what the user hands us (list, Series, DataFrame, file) becomes checked, distinct ids.

An id is checked before any request is made: Intercom's job ids are short tokens of letters,
digits, ``_`` and ``-``. Anything else (``/``, ``?``, ``#``, ``..``, inner whitespace, control
characters, empty, overlong) would change the URL we send the token to, so it becomes an
``invalid_job_id`` row and is never sent.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._warnings import warn
from .errors import ConfigurationError

__all__ = [
    "check_job_id",
    "read_job_ids",
    "workspace_names",
    "JobIds",
    "MAX_JOB_ID_LENGTH",
    "ID_FILE_SUFFIXES",
]

MAX_JOB_ID_LENGTH = 128
_JOB_ID = re.compile(r"[A-Za-z0-9_-]+")
ID_FILE_SUFFIXES = (".txt", ".csv")
# A float holds every integer exactly only up to 2**53; above, 2**53 + 1 reads as 2**53, so a
# float id that large may already be another job's id.
MAX_EXACT_FLOAT_ID = 2**53
# Headers of an ids column, compared case-insensitively with spaces, '_' and '-' alike.
ID_COLUMN_NAMES = frozenset({"id", "job_id", "jobid", "job"})
_SEPARATORS = re.compile(r"[\s_-]+")
_DIGIT = re.compile(r"[0-9]")


def check_job_id(value: Any) -> tuple[str, str | None]:
    """Normalize one id. Returns ``(job_id, problem)``; ``problem`` is None for a good id.

    A float is an id only if it is a whole number no larger than 2**53 (beyond that it may have
    been rounded from another id); an int of any size is fine.

    Example:
        >>> check_job_id(" 20 ")
        ('20', None)
        >>> check_job_id("20/../me")[1]
        "has characters other than letters, digits, '_' and '-'"
    """
    if isinstance(value, bool):
        return str(value), "is a boolean, not a job id"
    if isinstance(value, numbers.Integral):
        return str(int(value)), None
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "", "is empty"
        if isinstance(value, (float, np.floating)):
            if abs(value) > MAX_EXACT_FLOAT_ID:
                return str(value), "is a float too large to be an exact job id; pass it as text"
            if float(value).is_integer():
                return str(int(float(value))), None
        elif float(value).is_integer():
            return str(math.trunc(value)), None
        return str(value), "is a fractional number, not a job id"
    if value is None or value is pd.NA:
        return "", "is empty"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    if not text:
        return text, "is empty"
    if len(text) > MAX_JOB_ID_LENGTH:
        return text, f"is longer than {MAX_JOB_ID_LENGTH} characters"
    if not _JOB_ID.fullmatch(text):
        return text, "has characters other than letters, digits, '_' and '-'"
    return text, None


@dataclass
class JobIds:
    """Distinct checked ids in first-seen order, the bad ones, and the user's own columns."""

    ids: list[str]
    invalid: dict[str, str] = field(default_factory=dict)
    extra: pd.DataFrame | None = None  # the user's other columns, one row per id, same order
    duplicates: int = 0
    # A DataFrame's rows with no job id at all (a ticket never enqueued...): carried along to
    # the result, in their place, never asked. ``positions`` are the input rows of ``ids``.
    positions: list[int] | None = None
    carried: pd.DataFrame | None = None
    carried_positions: list[int] = field(default_factory=list)
    # Many workspaces: the workspace of each id (same order); ids are distinct per workspace.
    workspaces: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def _distinct(
    values: Iterable[Any], workspaces: list[str] | None = None
) -> tuple[list[str], dict[str, str], list[int], int]:
    """The distinct ids (per workspace when ``workspaces`` is given), the invalid ones, the
    positions of the first of each, and how many repeats were dropped."""
    seen: dict[Any, None] = {}
    ids: list[str] = []
    invalid: dict[str, str] = {}
    first_positions: list[int] = []
    duplicates = 0
    for position, value in enumerate(values):
        job_id, problem = check_job_id(value)
        key = job_id if workspaces is None else (workspaces[position], job_id)
        if key in seen:
            duplicates += 1
            continue
        seen[key] = None
        ids.append(job_id)
        first_positions.append(position)
        if problem:
            invalid[job_id] = f"job id {job_id!r} {problem}; it was not sent"
    return ids, invalid, first_positions, duplicates


def workspace_names(frame: pd.DataFrame) -> list[str] | None:
    """The ``workspace`` column as names, or None when there is none.

    Raises:
        ConfigurationError: a row has no workspace name.
    """
    if "workspace" not in frame.columns:
        return None
    names = frame["workspace"].tolist()
    blank = [i for i, name in enumerate(names) if not isinstance(name, str) or not name.strip()]
    if blank:
        raise ConfigurationError(
            f"{len(blank)} rows have no workspace name (the first: row {blank[0]}): every row "
            "of a frame with a workspace column needs one"
        )
    return names


def _from_frame(frame: pd.DataFrame, column: str = "job_id") -> JobIds:
    if column not in frame.columns:
        names = ", ".join(map(str, frame.columns))
        raise ConfigurationError(f"the DataFrame has no {column!r} column (its columns: {names})")
    values = frame[column].tolist()
    workspaces = workspace_names(frame)
    missing = [i for i, value in enumerate(values) if _is_missing(value)]
    kept = [i for i, value in enumerate(values) if not _is_missing(value)] if missing else None
    ids, invalid, positions, duplicates = _distinct(
        values if kept is None else [values[i] for i in kept],
        workspaces if kept is None or workspaces is None else [workspaces[i] for i in kept],
    )
    if kept is not None:
        positions = [kept[p] for p in positions]
    others = frame.drop(columns=[column])
    if workspaces is not None:  # a field of each row, not one of the user's columns
        others = others.drop(columns=["workspace"])
    extra = others.iloc[positions].reset_index(drop=True)
    if duplicates:
        same = "job_id and workspace" if workspaces is not None else "job_id"
        warn(f"{duplicates} rows repeat a {same} already seen; the first row of each is kept")
    carried = others.iloc[missing].reset_index(drop=True) if missing else None
    return JobIds(
        ids,
        invalid,
        extra if len(extra.columns) else None,
        duplicates,
        positions,
        carried,
        missing,
        None if workspaces is None else [workspaces[p] for p in positions],
    )


def _is_missing(value: Any) -> bool:
    """A DataFrame cell with no value (not an empty string: that is an id, and a bad one)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def _is_id_column_name(cell: str) -> bool:
    return _SEPARATORS.sub("_", cell.strip().lower()) in ID_COLUMN_NAMES


def _has_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first line of a CSV is a header (the rule is in `read_job_ids`)."""
    head = first[0]
    if _is_id_column_name(head) or check_job_id(head)[1] is not None:
        return True
    if _DIGIT.search(head):
        return False
    return bool(second and _DIGIT.search(second[0])) or any(
        _is_id_column_name(cell) for cell in first[1:]
    )


def _csv_frame(path: Path) -> pd.DataFrame | None:
    """The CSV as text, its ids column named ``job_id``; None for an empty file."""
    options: dict[str, Any] = dict(dtype=str, keep_default_na=False, encoding="utf-8-sig")
    try:
        top = pd.read_csv(path, header=None, nrows=2, **options)
        header = _has_header(top.iloc[0].tolist(), top.iloc[1].tolist() if len(top) > 1 else None)
        frame = pd.read_csv(path, header=0 if header else None, **options)
    except pd.errors.EmptyDataError:
        return None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ConfigurationError(f"cannot read {str(path)!r} as CSV: {exc}") from None
    if not header:
        frame.columns = ["job_id", *(f"column_{n}" for n in range(2, len(frame.columns) + 1))]
        return frame
    if "job_id" in frame.columns:
        return frame
    names = [c for c in frame.columns if _is_id_column_name(str(c))]
    return frame.rename(columns={(names or list(frame.columns))[0]: "job_id"})


def _read_file(path: Path) -> JobIds:
    if not path.is_file():
        raise ConfigurationError(f"no such ids file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        with path.open(encoding="utf-8-sig") as lines:
            values = [
                line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
            ]
        ids, invalid, _, duplicates = _distinct(values)
        return JobIds(ids, invalid, None, duplicates)
    if suffix == ".csv":
        frame = _csv_frame(path)
        return JobIds([]) if frame is None else _from_frame(frame)
    raise ConfigurationError(f"ids file must end in .txt or .csv, got {str(path)!r}")


def read_job_ids(source: Any) -> JobIds:
    """Accept what users have: ids (str or int), a Series, a DataFrame with ``job_id``, a file path.

    A ``.txt`` file holds one id a line (blank lines and ``#`` comments are skipped). A ``.csv``
    file may or may not have a header line; its first line is a header when

    - its first cell is a known id-column name: ``id``, ``job_id``, ``jobid`` or ``job``
      (case-insensitive; spaces, ``_`` and ``-`` are alike, so ``Job ID`` is one), or
    - its first cell is not a valid job id (e.g. ``order no.``, or empty), or
    - its first cell has no digit while the second line's first cell has one (``name`` over
      ``123``), or while another of its cells is a known id-column name (``order,job_id``).

    Otherwise the first line is data, whatever the number of columns: it is the first id. The
    ids column is ``job_id`` (or else the first known id-column name) if the header has one,
    else the first column; the other columns are kept as your columns (``column_2``,
    ``column_3``... in a file without a header).

    Raises:
        ConfigurationError: the source is none of those, or the file cannot be read.
    """
    if isinstance(source, pd.DataFrame):
        return _from_frame(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if isinstance(source, os.PathLike) or path.suffix.lower() in ID_FILE_SUFFIXES:
            return _read_file(path)
        raise ConfigurationError(
            f"{source!r} is a single string: pass a list of ids, or the path of a .txt/.csv "
            "file of ids (for one job use fetch_job)"
        )
    if isinstance(source, pd.Series):
        source = source.tolist()
    if isinstance(source, (bytes, dict)) or not isinstance(source, Iterable):
        raise ConfigurationError(
            f"expected job ids (a list, Series, DataFrame with a job_id column, or a .txt/.csv "
            f"path), got {type(source).__name__}"
        )
    ids, invalid, _, duplicates = _distinct(source)
    return JobIds(ids, invalid, None, duplicates)
