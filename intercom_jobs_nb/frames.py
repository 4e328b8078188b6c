"""Frames: result rows become a typed pandas DataFrame, and the everyday questions asked of it."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TRANSIENT_CODES, ConfigurationError
from .transport import COLUMNS, STATUSES

STATUS_DTYPE = pd.CategoricalDtype(list(STATUSES))
_STRING = "string"
_CATEGORY = "category"
DTYPES: dict[str, object] = {
    "job_id": _STRING,
    "status": STATUS_DTYPE,
    "resource_type": _CATEGORY,
    "resource_id": _STRING,
    "resource_url": _STRING,
    "url": _STRING,
    "http_status": "Int16",
    "error_code": _CATEGORY,
    "error_message": _STRING,
    "request_id": _STRING,
    "attempts": "Int16",
    "fetched_at": "datetime64[ns, UTC]",
}
INPUT_SUFFIX = "_input"
_CHUNK = 8192


def _column(name: str, values: Sequence) -> object:
    dtype = DTYPES[name]
    if name == "fetched_at":
        return pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True).array
    if dtype is STATUS_DTYPE:
        return pd.Categorical(values, dtype=STATUS_DTYPE)
    if dtype == _CATEGORY:
        return pd.Categorical(values)
    return pd.array(values, dtype=dtype)


def _arrays(rows: list, consume: bool) -> list[np.ndarray]:
    """One object array per column. With ``consume``, each row is let go of once copied, so
    100,000 row tuples and their DataFrame never all live at once."""
    n = len(rows)
    arrays = [np.empty(n, dtype=object) for _ in COLUMNS]
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        for array, values in zip(arrays, zip(*rows[start:stop], strict=True), strict=True):
            array[start:stop] = values
        if consume:
            rows[start:stop] = [None] * (stop - start)
    return arrays


def to_frame(rows: list, extra: pd.DataFrame | None = None, *,
             consume: bool = False) -> pd.DataFrame:
    """Rows (tuples in `COLUMNS` order) as a typed DataFrame; the user's columns after them.

    ``consume=True`` empties ``rows`` as it goes (the caller's list, to save memory).
    """
    arrays = _arrays(rows, consume)
    frame = pd.DataFrame({})
    for name in COLUMNS:
        frame[name] = _column(name, arrays.pop(0))
    if extra is not None and len(extra.columns):
        clash = [c for c in extra.columns if c in DTYPES]
        if clash:
            warnings.warn(
                f"your columns {clash} share names with result columns; they are kept as "
                f"{[f'{c}{INPUT_SUFFIX}' for c in clash]}",
                stacklevel=3,
            )
            extra = extra.rename(columns={c: f"{c}{INPUT_SUFFIX}" for c in clash})
        frame = pd.concat([frame, extra.reset_index(drop=True)], axis=1)
    return frame


def frame_rows(df: pd.DataFrame) -> list[tuple]:
    """The inverse of `to_frame` for the result columns: row tuples in `COLUMNS` order."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ConfigurationError(f"not a jobs DataFrame: it lacks the columns {missing}")
    out = []
    fetched = df["fetched_at"]
    epoch = (fetched.astype("int64") / 1e9).tolist() if not fetched.isna().any() else [
        None if pd.isna(t) else t.timestamp() for t in fetched]
    lists = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in COLUMNS[:-1]]
    for i, fetched_at in enumerate(epoch):
        out.append((*(col[i] for col in lists), fetched_at))
    return out


def is_final(df: pd.DataFrame) -> pd.Series:
    """True where a row will not change: the job succeeded or failed, or the id is hopeless."""
    transient = df["error_code"].astype(object).isin(TRANSIENT_CODES)
    pending = df["status"] == "pending"
    return ~(pending.fillna(False) | transient) & (df["status"].notna() | df["error_code"].notna())


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares by ``status``, ``resource_type`` and ``error_code``.

    Missing values are shown as ``(none)``; a row whose fetch failed has status ``(none)`` and
    its ``error_code`` says why.

    Example:
        >>> ij.summarize(df)                                  # doctest: +SKIP
                               count  share
        by            value
        status        pending     12  0.006
                      success   1850  0.925
        ...
    """
    if "status" not in df.columns:
        raise ConfigurationError("summarize needs a jobs DataFrame (from fetch_jobs)")
    total = len(df)
    parts = []
    for by in ("status", "resource_type", "error_code"):
        series = df[by]
        counts = series.value_counts(dropna=True, sort=by != "status")
        missing = int(series.isna().sum())
        if missing:
            counts = pd.concat([counts, pd.Series({"(none)": missing})])
        part = pd.DataFrame({"count": counts.astype("int64")})
        part["share"] = (part["count"] / total).round(4) if total else 0.0
        part.index = pd.MultiIndex.from_product([[by], part.index.astype(str)],
                                                names=["by", "value"])
        parts.append(part)
    return pd.concat(parts)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that need a look: jobs that failed, and jobs whose status could not be read."""
    mask = (df["status"] == "failed").fillna(False) | df["error_code"].notna()
    return df.loc[mask]


def join_jobs(records: pd.DataFrame, df: pd.DataFrame, *, on: str = "job_id",
              how: str = "left") -> pd.DataFrame:
    """Join your own records (one column holding job ids) with the results, by job id.

    Ids are compared as trimmed strings, so ``20`` (an int column) matches ``"20"``.
    """
    if on not in records.columns:
        raise ConfigurationError(f"your records have no {on!r} column")
    key = records[on].map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer()
                          else str(v).strip())
    right = df.rename(columns={"job_id": "_job_key"})
    merged = records.assign(_job_key=key.astype("string")).merge(
        right, on="_job_key", how=how, suffixes=("", "_job"))
    return merged.drop(columns="_job_key")


def export_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the DataFrame as CSV, atomically (a half-written file never replaces a good one).

    Returns:
        The path written, absolute.
    """
    target = Path(path).expanduser().resolve()
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write {str(target)!r}: no such folder")
    # Opened like any new file (not mkstemp, which makes it 0600), so the umask sets its mode.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", newline="", encoding="utf-8") as handle:
            df.to_csv(handle, index=False)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
