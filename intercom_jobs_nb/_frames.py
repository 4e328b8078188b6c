"""Frames: the everyday questions asked of a result DataFrame, and its CSV export.

The rows and their dtypes are ``_rows.py``'s; this module reads frames, it does not build them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._errors import ConfigurationError
from ._format import number, percent
from ._rows import DECLARED, STRING, to_frame

__all__ = [
    "Summary",
    "summarize",
    "counts_by",
    "failures",
    "NO_REASON",
    "join_jobs",
    "export_csv",
    "is_final",
    "to_frame",
    "INTERCOM_TEXT_COLUMNS",
]


def is_final(df: pd.DataFrame) -> pd.Series:
    """True where a row will not change (its ``final`` column)."""
    return df["final"].astype(bool)


class Summary(pd.DataFrame):
    """A summary table (`summarize`): its ``share`` values are fractions, for code; shown (in a
    notebook or printed) as percentages, ``72.4%``, like the CLI and the panel show them.

    Any operation on it gives a plain DataFrame (pandas' documented way to subclass it).
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def shown(self) -> pd.DataFrame:
        """The table as displayed: ``count`` as ``1,502``, ``share`` as ``72.4%`` (text)."""
        plain = pd.DataFrame(self)
        return plain.assign(count=plain["count"].map(number), share=plain["share"].map(percent))

    def __repr__(self) -> str:
        return repr(self.shown())

    def _repr_html_(self) -> str | None:
        return self.shown().to_html(notebook=True)


def counts_by(df: pd.DataFrame, columns: Sequence[str]) -> Summary:
    """Counts and shares of the values of each of ``columns``, missing ones as ``(none)``.

    ``status`` keeps its declared order (pending, success, failed, each even when absent);
    other columns list their most frequent values first.
    """
    total = len(df)
    parts = []
    for by in columns:
        series = df[by]
        counts = series.value_counts(dropna=True, sort=by != "status")
        if by != "status":  # a categorical's unused categories are not values of the frame
            counts = counts[counts > 0]
        missing = int(series.isna().sum())
        if missing:
            counts = pd.concat([counts, pd.Series({"(none)": missing})])
        part = pd.DataFrame({"count": counts.astype("int64")})
        part["share"] = (part["count"] / total).round(4) if total else 0.0
        part.index = pd.MultiIndex.from_product(
            [[by], part.index.astype(str)], names=["by", "value"]
        )
        parts.append(part)
    return Summary(pd.concat(parts))


def summarize(df: pd.DataFrame) -> Summary:
    """Counts and shares by ``status``, ``resource_type`` and ``error_code``.

    Missing values are shown as ``(none)``; a row whose fetch failed has status ``(none)`` and
    its ``error_code`` says why. ``share`` holds fractions (0.7426), displayed as percentages
    (74.3%).

    Example:
        >>> ij.summarize(df)                                  # doctest: +SKIP
                              count   share
        by            value
        status        pending    12    0.6%
                      success 1,850   92.5%
        ...
    """
    if "status" not in df.columns:
        raise ConfigurationError("summarize needs a jobs DataFrame (from fetch_jobs)")
    return counts_by(df, ("status", "resource_type", "error_code"))


#: What `failures` says of a job Intercom marked failed without a word.
NO_REASON = "Intercom marked the job failed and gave no reason"


def failures(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that need a look, each with a ``reason`` a person can act on.

    The rows: jobs that failed, jobs whose status could not be read, and (in a frame from
    `enqueue_tickets`) rows Intercom refused to enqueue. Their ``reason``:

    - Intercom's (or the network's) message, where there is one; a failure that may pass
      (``final`` is False) adds that `refresh` asks again;
    - for a ``failed`` job with no message: that Intercom gave none, and what to look at (what
      the enqueue answered, the ticket type, the attributes the row sent).
    """
    mask = (df["status"] == "failed").fillna(False) | df["error_code"].notna()
    if "enqueue_error_code" in df.columns:
        mask |= df["enqueue_error_code"].notna()
    out = df.loc[mask].copy()
    columns = {name: out[name].tolist() for name in _REASON_COLUMNS if name in out.columns}
    out["reason"] = pd.array(
        [_reason({k: v[i] for k, v in columns.items()}) for i in range(len(out))],
        dtype=STRING,
    )
    return out


_REASON_COLUMNS = (
    "status",
    "error_code",
    "error_message",
    "final",
    "enqueue_error_code",
    "enqueue_error_message",
    "ticket_type_id",
)


def _given(value: Any) -> str | None:
    return None if value is None or pd.isna(value) or str(value).strip() == "" else str(value)


def _reason(row: dict[str, Any]) -> str:
    """One row's ``reason`` (see `failures`)."""
    refused, refused_code = (
        _given(row.get("enqueue_error_message")),
        _given(row.get("enqueue_error_code")),
    )
    if refused or refused_code:
        return f"Intercom refused to enqueue the row: {refused or refused_code}"
    message, code = _given(row.get("error_message")), _given(row.get("error_code"))
    if message or code:
        said = message or f"{code} (no message)"
        final = row.get("final")
        if final is not None and not pd.isna(final) and not final:
            said += "; this may pass: ij.refresh(df) asks again"
        return said
    hint = "look at the row that enqueued it: its ticket type and the attributes it sent"
    ticket_type = _given(row.get("ticket_type_id"))
    if ticket_type:
        hint += f" (ticket type {ticket_type})"
    return f"{NO_REASON}; {hint}"


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
