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
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigurationError

MAX_JOB_ID_LENGTH = 128
_JOB_ID = re.compile(r"[A-Za-z0-9_-]+")
ID_FILE_SUFFIXES = (".txt", ".csv")


def check_job_id(value: Any) -> tuple[str, str | None]:
    """Normalize one id. Returns ``(job_id, problem)``; ``problem`` is None for a good id.

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
        if float(value).is_integer():
            return str(int(value)), None
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

    def __len__(self) -> int:
        return len(self.ids)


def _distinct(values: Iterable[Any]) -> tuple[list[str], dict[str, str], list[int], int]:
    seen: dict[str, None] = {}
    invalid: dict[str, str] = {}
    first_positions: list[int] = []
    duplicates = 0
    for position, value in enumerate(values):
        job_id, problem = check_job_id(value)
        if job_id in seen:
            duplicates += 1
            continue
        seen[job_id] = None
        first_positions.append(position)
        if problem:
            invalid[job_id] = f"job id {job_id!r} {problem}; it was not sent"
    return list(seen), invalid, first_positions, duplicates


def _from_frame(frame: pd.DataFrame, column: str = "job_id") -> JobIds:
    if column not in frame.columns:
        names = ", ".join(map(str, frame.columns))
        raise ConfigurationError(f"the DataFrame has no {column!r} column (its columns: {names})")
    ids, invalid, positions, duplicates = _distinct(frame[column].tolist())
    extra = frame.drop(columns=[column]).iloc[positions].reset_index(drop=True)
    if duplicates:
        warnings.warn(
            f"{duplicates} rows repeat a job_id already seen; the first row of each id is kept",
            stacklevel=4,
        )
    return JobIds(ids, invalid, extra if len(extra.columns) else None, duplicates)


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
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            return JobIds([])
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ConfigurationError(f"cannot read {str(path)!r} as CSV: {exc}") from None
        if "job_id" in frame.columns:
            return _from_frame(frame)
        # No job_id header: the first column holds the ids, and its header may be an id too.
        first = frame.columns[0]
        if check_job_id(first)[1] is None and len(frame.columns) == 1:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, header=None,
                                encoding="utf-8-sig")
            first = frame.columns[0]
        return _from_frame(frame.rename(columns={first: "job_id"}))
    raise ConfigurationError(f"ids file must end in .txt or .csv, got {str(path)!r}")


def read_job_ids(source: Any) -> JobIds:
    """Accept what users have: ids (str or int), a Series, a DataFrame with ``job_id``, a file path.

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
