"""Frames: the everyday questions asked of a result DataFrame, and its CSV export.

The rows and their dtypes are ``_rows.py``'s; this module reads frames, it does not build them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd

from ._errors import ConfigurationError
from ._rows import DECLARED, to_frame

__all__ = [
    "summarize",
    "failures",
    "join_jobs",
    "export_csv",
    "is_final",
    "to_frame",
    "INTERCOM_TEXT_COLUMNS",
]


def is_final(df: pd.DataFrame) -> pd.Series:
    """True where a row will not change (its ``final`` column)."""
    return df["final"].astype(bool)


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
        part.index = pd.MultiIndex.from_product(
            [[by], part.index.astype(str)], names=["by", "value"]
        )
        parts.append(part)
    return pd.concat(parts)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that need a look: jobs that failed, and jobs whose status could not be read."""
    mask = (df["status"] == "failed").fillna(False) | df["error_code"].notna()
    return df.loc[mask]


def join_jobs(
    records: pd.DataFrame, df: pd.DataFrame, *, on: str = "job_id", how: str = "left"
) -> pd.DataFrame:
    """Join your own records (one column holding job ids) with the results, by job id.

    Ids are compared as trimmed strings, so ``20`` (an int column) matches ``"20"``.
    """
    if on not in records.columns:
        raise ConfigurationError(f"your records have no {on!r} column")
    key = records[on].map(
        lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()
    )
    right = df.rename(columns={"job_id": "_job_key"})
    merged = records.assign(_job_key=key.astype("string")).merge(
        right, on="_job_key", how=how, suffixes=("", "_job")
    )
    return merged.drop(columns="_job_key")


# Result columns whose text comes from Intercom (or a server posing as it): the only ones
# `export_csv` escapes (their `Column` says ``intercom_text``). Never ``job_id`` (the user's own
# ids) nor the user's columns.
INTERCOM_TEXT_COLUMNS = tuple(c.name for c in DECLARED if c.intercom_text)


def _escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose Intercom text cells that a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) start with ``'`` instead
    (OWASP's CSV injection advice). ``df`` itself is left alone; returned as is if clean."""
    starts = ("=", "+", "-", "@", "\t", "\r")

    def escaped(series: pd.Series) -> pd.Series | None:
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = pd.Series(series.cat.categories)
            new = escaped(categories)
            if new is None:
                return None
            if new.is_unique:
                return series.cat.rename_categories(new.tolist())
            return escaped(series.astype(object))  # '=x' and "'=x" both there: plain text
        if not pd.api.types.is_string_dtype(series.dtype):
            return None
        try:
            mask = series.str.startswith(starts, na=False)
        except AttributeError:  # an object column holding no text at all
            return None
        if not mask.any():
            return None
        out = series.copy()
        out[mask] = "'" + series[mask].astype(str)
        return out

    changed: dict[str, pd.Series] = {}
    for name in INTERCOM_TEXT_COLUMNS:
        if name in df.columns:
            new = escaped(df[name])
            if new is not None:
                changed[name] = new
    return df.assign(**changed) if changed else df


def export_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], *, escape_formulas: bool = True
) -> Path:
    """Write the DataFrame as CSV, atomically (a half-written file never replaces a good one).

    With ``escape_formulas`` (the default), a cell of Intercom's text (the columns in
    `INTERCOM_TEXT_COLUMNS`) that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return
    is written with a leading ``'``, so a spreadsheet shows it rather than running it as a
    formula. ``job_id`` and your own columns are written as they are; ``df`` is not changed.

    Returns:
        The path written, absolute.
    """
    if escape_formulas:
        df = _escape_formulas(df)
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
