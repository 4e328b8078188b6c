"""The jobs table's view state: sort, filters, the window of rows in sight, find. No widgets.

`TableView` holds a jobs frame and what the person chose (a column to sort by and its order,
a status and an error-code filter, an id to find). The front end scrolls through every row of
the view, asking for the rows in sight with `window`: the kernel sends at most `MAX_WINDOW` rows
a view, whatever the table's size (``benchmarks/bench_panel.py`` measures it with 100,000 rows).

The run's thread replaces the frame (`show`) while the front end's handlers read it: one lock
guards the frame and the view made from it.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import pandas as pd

from . import _errors as E
from ._format import number
from ._panel_render import table_columns
from ._plotting import outcomes

__all__ = ["TableView", "Note", "Window", "ALL", "NO_VALUE", "RANK_SORT", "MAX_WINDOW"]

ALL = ""  # a filter's value that keeps every row
NO_VALUE = "(none)"  # a filter's value that keeps the rows where the column is empty
RANK_SORT = ""  # the sort that puts failed and unreadable jobs first
MAX_WINDOW = 200  # rows the kernel sends for one view of the table, at most
_RANK = {"error": 0, "failed": 1, "pending": 2, "success": 3}
_WIDTH = (4, 48)  # a column's width in characters: at least, at most (longer text is cut)


class Note(NamedTuple):
    """A short message beside the control that caused it."""

    text: str = ""
    kind: str = "info"  # info, warning or error


class Window(NamedTuple):
    """Rows of the view from ``start``: each row's cells as text, and its outcome."""

    start: int
    rows: list[list[str]]
    outcomes: list[str]


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sort_key(series: pd.Series) -> pd.Series:
    """Numbers as numbers (ids, HTTP statuses), everything else as text."""
    numeric = pd.to_numeric(series.astype(object), errors="coerce")
    if int(numeric.isna().sum()) == int(series.isna().sum()):
        return numeric
    return (
        series.astype(object)
        .where(series.notna(), None)
        .map(lambda v: None if v is None else str(v).lower())
    )


class TableView:
    """The jobs table's view of a frame: which rows, in which order, and the one found."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._df: pd.DataFrame | None = None
        self.sort_by = RANK_SORT
        self.ascending = True
        self.status_filter = ALL
        self.code_filter = ALL
        self.found: str | None = None  # the job id found
        self.found_row: int | None = None  # its position in the view
        self.find_note = Note()
        self._view: tuple[tuple[Any, ...], pd.DataFrame] | None = None
        self._widths: tuple[int, list[int]] | None = None

    # -- the data ---------------------------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame | None:
        return self._df

    def show(self, df: pd.DataFrame | None) -> None:
        """Show ``df``: the sort stays, the filters where they still apply, the found row if
        it is still shown."""
        with self._lock:
            self._df = df
            self._view = None
            self._widths = None
            if df is None:
                return
            if self.status_filter not in {v for _, v in self.filter_choices("status")}:
                self.status_filter = ALL
            if self.code_filter not in {v for _, v in self.filter_choices("error_code")}:
                self.code_filter = ALL
            self._relocate()

    @property
    def columns(self) -> list[str]:
        """The columns the jobs table shows."""
        df = self._df
        return [] if df is None else table_columns(df)

    def view(self) -> pd.DataFrame:
        """Every row the filters keep, in the chosen order."""
        with self._lock:
            df = self._df
            if df is None:
                return pd.DataFrame()
            key = (self.sort_by, self.ascending, self.status_filter, self.code_filter)
            if self._view is not None and self._view[0] == key:
                return self._view[1]
            view = self._sorted(df.loc[self._keep(df)])
            self._view = (key, view)
            return view

    def _keep(self, df: pd.DataFrame) -> pd.Series:
        keep = pd.Series(True, index=df.index)
        for column, value in (("status", self.status_filter), ("error_code", self.code_filter)):
            if value == NO_VALUE:
                keep &= df[column].isna()
            elif value != ALL:
                keep &= (df[column].astype(object) == value).fillna(False).astype(bool)
        return keep

    def _sorted(self, view: pd.DataFrame) -> pd.DataFrame:
        if self.sort_by == RANK_SORT:
            rank = outcomes(view).map(_RANK).astype("int64")
            return view.loc[rank.sort_values(kind="stable", ascending=self.ascending).index]
        return view.sort_values(
            self.sort_by, key=_sort_key, ascending=self.ascending, kind="stable", na_position="last"
        )

    def window(self, start: int, count: int) -> Window:
        """The rows ``start`` to ``start + count`` of the view (at most `MAX_WINDOW`), as
        text; ``start`` is moved back where the view ends sooner."""
        with self._lock:
            view = self.view()
            count = max(0, min(int(count), MAX_WINDOW))
            start = max(0, min(int(start), len(view) - count))
            part = view.iloc[start : start + count]
            columns = self.columns
            rows = [[_text(v) for v in values] for values in part[columns].itertuples(index=False)]
            kinds = outcomes(part).astype(str).tolist() if len(part) else []
            return Window(start, rows, kinds)

    def widths(self) -> list[int]:
        """Each column's width in characters: its longest text (or header), within bounds."""
        with self._lock:
            df = self._df
            if df is None:
                return []
            if self._widths is not None and self._widths[0] == id(df):
                return self._widths[1]
            widths = []
            for column in self.columns:
                text = df[column].astype(object).map(_text)
                longest = int(text.str.len().max()) if len(text) else 0
                widths.append(max(_WIDTH[0], min(_WIDTH[1], max(longest, len(column)) + 2)))
            self._widths = (id(df), widths)
            return widths

    def label(self) -> str:
        """``"1,001 rows"``, or ``"12 rows (filtered from 1,001)"``, or ``"1 row"``."""
        df = self._df
        if df is None:
            return ""
        shown = len(self.view())
        label = f"{number(shown)} {'row' if shown == 1 else 'rows'}" if shown else "no rows"
        if shown != len(df):
            label += f" (filtered from {number(len(df))})"
        return label

    # -- what the person chooses ------------------------------------------------------------

    def sort(self, column: str) -> None:
        """A click on a header: sort by it; a second click: the other order."""
        if column == self.sort_by:
            self.set_sort(column, not self.ascending)
        else:
            self.set_sort(column, True)

    def set_sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort by ``column`` (`RANK_SORT`: failed and unreadable first)."""
        if column != RANK_SORT and column not in self.columns:
            raise E.ConfigurationError(f"cannot sort by {column!r}")
        with self._lock:
            self.sort_by = column
            if ascending is not None:
                self.ascending = ascending
            self._relocate()

    def set_filters(self, *, status: str | None = None, code: str | None = None) -> None:
        """Keep only the rows with this status / error code (`ALL`, `NO_VALUE`, or a value)."""
        with self._lock:
            if status is not None:
                self.status_filter = status
            if code is not None:
                self.code_filter = code
            self._relocate()

    def filter_choices(self, column: str) -> list[tuple[str, str]]:
        """The choices of a filter, from the data, with counts: ``[("all (1,000)", ALL),
        ("success (700)", "success"), ...]``."""
        df = self._df
        if df is None:
            return [("all", ALL)]
        series = df[column]
        counts = series.astype(object).value_counts(dropna=True)
        if column == "status":
            order = [v for v in ("success", "failed", "pending") if v in counts.index]
            order += sorted(str(v) for v in counts.index if v not in order)
            empty = "unreadable"
        else:
            order = sorted(str(v) for v in counts.index)
            empty = "no error"
        choices = [(f"all ({number(len(df))})", ALL)]
        choices += [(f"{v} ({number(int(counts[v]))})", str(v)) for v in order]
        missing = int(series.isna().sum())
        if missing:
            choices.append((f"{empty} ({number(missing)})", NO_VALUE))
        return choices

    def find(self, text: str) -> bool:
        """Find the job id ``text`` (else the first id containing it): `found_row` is where
        it is in the view; the find note says so, or why not."""
        text = (text or "").strip()
        with self._lock:
            self.found = self.found_row = None
            if not text:
                self.find_note = Note()
                return False
            if self._df is None:
                self.find_note = Note("Nothing to search yet: click Refresh first.", "warning")
                return False
            ids = self.view()["job_id"].astype(object).astype(str)
            exact = ids.to_numpy() == text
            if not exact.any():
                if text in set(self._df["job_id"].astype(object).astype(str)):
                    note = f"{text} is hidden by the filters: set them to all to see it."
                    self.find_note = Note(note, "warning")
                    return False
                exact = ids.str.contains(text, regex=False).to_numpy()
            if not exact.any():
                self.find_note = Note(f"{text}: not found.", "error")
                return False
            self.found = str(ids.iloc[int(exact.argmax())])
            self._relocate()
            return True

    def _relocate(self) -> None:
        """After the view changed: the found row's new place, or no found row (and no note)
        when the view no longer shows it."""
        if self.found is None:
            self.find_note = Note()
            return
        ids = self.view()["job_id"].astype(object).astype(str).to_numpy()
        where = (ids == self.found).nonzero()[0]
        if not len(where):
            self.found = self.found_row = None
            self.find_note = Note()
            return
        self.found_row = int(where[0])
        self.find_note = Note(
            f"{self.found}: row {number(self.found_row + 1)} of {number(len(ids))}.", "info"
        )
