"""The result row: its fields, statuses and DataFrame dtypes, and whether it is final.

A row is a `Row` (a `typing.NamedTuple`: read by name, at a tuple's cost), built only by the
constructors here, so the one rule for ``final`` is applied once, when the answer is read:

- a job that answered ``success`` or ``failed`` is final; ``pending`` is not;
- a failed fetch is final unless `codes.is_transient` says asking again may succeed;
- a row for an id not asked yet (`unasked_row`) is not final.

Where a change goes: a new column is a field of `Row` and an entry of `DTYPES` (the checkpoint
and the frames follow from `COLUMNS`); bump ``checkpoint.SCHEMA_VERSION`` with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import codes as C
from ._warnings import warn
from .errors import ConfigurationError

__all__ = [
    "Row",
    "COLUMNS",
    "STATUSES",
    "FINAL_STATUSES",
    "DTYPES",
    "STATUS_DTYPE",
    "job_row",
    "error_row",
    "unasked_row",
    "to_frame",
    "frame_rows",
    "user_columns",
]


class Row(NamedTuple):
    """One job's result. ``status`` is None when the job could not be read (see
    ``error_code``); ``final`` says whether asking again could change the row."""

    job_id: str
    status: str | None
    resource_type: str | None
    resource_id: str | None
    resource_url: str | None
    url: str | None
    http_status: int | None
    error_code: str | None
    error_message: str | None
    request_id: str | None
    attempts: int
    fetched_at: float | None  # UNIX seconds, local clock
    final: bool


COLUMNS: tuple[str, ...] = Row._fields
STATUSES = ("pending", "success", "failed")
FINAL_STATUSES = frozenset({"success", "failed"})
STATUS_DTYPE = pd.CategoricalDtype(list(STATUSES))
DTYPES: dict[str, Any] = {
    "job_id": "string",
    "status": STATUS_DTYPE,
    "resource_type": "category",
    "resource_id": "string",
    "resource_url": "string",
    "url": "string",
    "http_status": "Int16",
    "error_code": "category",
    "error_message": "string",
    "request_id": "string",
    "attempts": "Int16",
    "fetched_at": "datetime64[ns, UTC]",
    "final": "bool",
}
assert tuple(DTYPES) == COLUMNS


def job_row(
    job_id: str,
    status: str,
    *,
    resource_type: str | None,
    resource_id: str | None,
    resource_url: str | None,
    url: str | None,
    request_id: str | None,
    attempts: int,
    fetched_at: float,
) -> Row:
    """A job's answer (``status`` one of `STATUSES`)."""
    return Row(
        job_id,
        status,
        resource_type,
        resource_id,
        resource_url,
        url,
        200,
        None,
        None,
        request_id,
        attempts,
        fetched_at,
        status in FINAL_STATUSES,
    )


def error_row(
    job_id: str,
    url: str | None,
    code: str,
    message: str,
    *,
    http_status: int | None = None,
    request_id: str | None = None,
    attempts: int = 0,
) -> Row:
    """A fetch that failed; final unless `codes.is_transient`."""
    return Row(
        job_id,
        None,
        None,
        None,
        None,
        url,
        http_status,
        code,
        message,
        request_id,
        attempts,
        time.time(),
        not C.is_transient(http_status, code),
    )


def unasked_row(job_id: str) -> Row:
    """A placeholder for an id not asked yet (never final)."""
    return Row(job_id, None, None, None, None, None, None, None, None, None, 0, None, False)


# -- rows <-> DataFrame -------------------------------------------------------------------------

_CHUNK = 8192


def _column(name: str, values: np.ndarray) -> Any:
    dtype = DTYPES[name]
    if name == "fetched_at":
        return pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True).array
    if name == "final":
        return values.astype(bool)
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical(values, dtype=dtype)
    if dtype == "category":
        return pd.Categorical(values)
    return pd.array(values, dtype=dtype)


def _arrays(rows: list, consume: bool) -> list[np.ndarray]:
    """One object array per column. With ``consume``, each row is let go of once copied, so
    100,000 rows and their DataFrame never all live at once."""
    n = len(rows)
    arrays = [np.empty(n, dtype=object) for _ in COLUMNS]
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        for array, values in zip(arrays, zip(*rows[start:stop], strict=True), strict=True):
            array[start:stop] = values
        if consume:
            rows[start:stop] = [None] * (stop - start)
    return arrays


def to_frame(
    rows: list, extra: pd.DataFrame | None = None, *, consume: bool = False
) -> pd.DataFrame:
    """Rows as a typed DataFrame, with the user's own columns (``extra``) after them.

    ``consume=True`` empties ``rows`` as it goes (the caller's list, to save memory).
    """
    arrays = _arrays(rows, consume)
    frame = pd.DataFrame({name: _column(name, arrays[k]) for k, name in enumerate(COLUMNS)})
    if extra is not None and len(extra.columns):
        clash = [c for c in extra.columns if c in DTYPES]
        if clash:
            renamed = {c: f"{c}{INPUT_SUFFIX}" for c in clash}
            warn(
                f"your columns {clash} share names with result columns; they are kept as "
                f"{list(renamed.values())}"
            )
            extra = extra.rename(columns=renamed)
        frame = pd.concat([frame, extra.reset_index(drop=True)], axis=1)
    return frame


INPUT_SUFFIX = "_input"


def user_columns(df: pd.DataFrame) -> pd.DataFrame | None:
    """The user's own columns of a result frame (None when there are none)."""
    extra = df.drop(columns=[c for c in COLUMNS if c in df.columns])
    return extra if len(extra.columns) else None


def frame_rows(df: pd.DataFrame) -> list[Row]:
    """The inverse of `to_frame` for the result columns.

    Raises:
        ConfigurationError: ``df`` lacks result columns (it is not from `fetch_jobs`).
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ConfigurationError(
            f"not a jobs DataFrame (from fetch_jobs): it lacks the columns {missing}"
        )
    fetched = df["fetched_at"]
    epoch: Sequence[float | None]
    if not fetched.isna().any():
        epoch = (fetched.astype("int64") / 1e9).tolist()
    else:
        epoch = [None if pd.isna(t) else t.timestamp() for t in fetched]
    lists = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in COLUMNS[:-2]]
    finals = df["final"].astype(bool).tolist()
    return [
        Row(*(col[i] for col in lists), epoch[i], finals[i])  # type: ignore[call-arg]
        for i in range(len(df))
    ]
