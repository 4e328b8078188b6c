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
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from . import codes as C
from ._warnings import warn
from .errors import ConfigurationError

__all__ = [
    "Row",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "FINAL_INDEX",
    "STATUSES",
    "FINAL_STATUSES",
    "DTYPES",
    "STATUS_DTYPE",
    "job_row",
    "error_row",
    "unasked_row",
    "to_frame",
    "with_extra",
    "RowStore",
    "BLOCK",
    "seal",
    "unseal",
    "blocks_frame",
    "STRING",
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
    workspace: str | None = None  # the workspace's name in a run of many (`tokens=`)


COLUMNS: tuple[str, ...] = Row._fields
STATUSES = ("pending", "success", "failed")
FINAL_STATUSES = frozenset({"success", "failed"})
STATUS_DTYPE = pd.CategoricalDtype(list(STATUSES))
#: Text columns are Arrow strings whatever pandas' default (pyarrow is a dependency).
STRING = pd.StringDtype("pyarrow")
DTYPES: dict[str, Any] = {
    "job_id": STRING,
    "status": STATUS_DTYPE,
    "resource_type": "category",
    "resource_id": STRING,
    "resource_url": STRING,
    "url": STRING,
    "http_status": "Int16",
    "error_code": "category",
    "error_message": STRING,
    "request_id": STRING,
    "attempts": "Int16",
    "fetched_at": "datetime64[ns, UTC]",
    "final": "bool",
    "workspace": "category",
}
assert tuple(DTYPES) == COLUMNS
#: Columns a frame has only when some row has a value (a run of one workspace has none).
OPTIONAL_COLUMNS = frozenset({"workspace"})
REQUIRED_COLUMNS = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)
FINAL_INDEX = COLUMNS.index("final")


def utc_from_seconds(seconds: pd.Series) -> pd.Series:
    """UNIX seconds (a number, or None or NaN for none) as ``datetime64[ns, UTC]``, NaT for none.

    A missing value is converted as 0, then masked: pandas 2's conversion of float seconds
    reads uninitialised memory in place of a NaN's fraction of a second, and then may raise
    ``FloatingPointError: overflow encountered in multiply`` (an enqueue run resumed after a
    kill, whose rows not sent have no time, did).
    """
    values = seconds.astype("float64")
    missing = values.isna()
    return pd.to_datetime(values.mask(missing, 0.0), unit="s", utc=True).mask(missing)


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
#
# Rows are kept as Python tuples only while they arrive: every `BLOCK` of them is sealed into one
# Arrow array per column (strings as Arrow strings, repeated values dictionary-encoded), about
# 180 bytes a row instead of some 550 as tuples of str. The DataFrame's string columns are those
# same Arrow buffers (pandas' ``string[pyarrow]``, no copy); the others are converted once.

BLOCK = 8192
_ARROW: dict[str, Any] = {
    name: (
        pa.bool_()
        if name == "final"
        else pa.float64()
        if name == "fetched_at"
        else pa.int16()
        if dtype == "Int16"
        else pa.large_string()  # what pandas' string[pyarrow] holds: no conversion
    )
    for name, dtype in DTYPES.items()
}
# Our blocks live in the C library's allocator: Arrow's default (mimalloc) keeps freed pages,
# which for a run of a million rows costs about 150 bytes a row of resident memory more.
POOL = pa.system_memory_pool()
_CATEGORIES = frozenset(
    name
    for name, dtype in DTYPES.items()
    if isinstance(dtype, pd.CategoricalDtype) or dtype == "category"
)
Block = list  # one Arrow array per column of COLUMNS


def _arrow(name: str, values: Sequence[Any]) -> Any:
    """One column of a block, as Arrow (dictionary-encoded where values repeat)."""
    kind = _ARROW[name]
    try:
        array = pa.array(values, kind, memory_pool=POOL)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # A frame of the user's (read back from a CSV, say) may hold 200.0 or 42: as pandas would.
        if kind == pa.large_string():
            array = pa.array([None if v is None else str(v) for v in values], kind)
        else:
            array = pa.array(pd.array(list(values), dtype=DTYPES[name]), kind)
    if name not in _CATEGORIES:
        return array
    encoded = pc.dictionary_encode(array, memory_pool=POOL)
    if len(encoded.dictionary) < 128:  # one byte a row, not four
        encoded = pa.DictionaryArray.from_arrays(
            pc.cast(encoded.indices, pa.int8(), memory_pool=POOL), encoded.dictionary
        )
    return encoded


def seal(rows: Sequence[Any]) -> Block:
    """Rows (all present) as a block: one Arrow array per column."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    return [_arrow(name, columns[k]) for k, name in enumerate(COLUMNS)]


def unseal(block: Block) -> list[Row]:
    """A block's rows back as tuples."""
    return [Row._make(values) for values in zip(*(a.to_pylist() for a in block), strict=True)]


_NUMPY = {"final": np.bool_, "fetched_at": np.int64, "http_status": np.int16, "attempts": np.int16}


def _pandas(name: str, chunks: list[Any]) -> Any:
    """One DataFrame column from its blocks' Arrow arrays, in ``DTYPES[name]``."""
    dtype = DTYPES[name]
    if name in _CATEGORIES:
        # Each block has its own dictionary: map every block's codes onto the sorted union.
        found = sorted({v for c in chunks for v in c.dictionary.to_pylist() if v is not None})
        if isinstance(dtype, pd.CategoricalDtype):
            found = list(dtype.categories)
        where = {v: k for k, v in enumerate(found)}
        codes = np.empty(
            sum(len(c) for c in chunks), dtype=np.int8 if len(found) < 128 else np.int32
        )
        at = 0
        for c in chunks:
            lookup = np.array([where.get(v, -1) for v in c.dictionary.to_pylist()] + [-1])
            indices = c.indices.to_numpy(zero_copy_only=False)  # nulls: a float NaN or any
            local = np.where(c.indices.is_null().to_numpy(zero_copy_only=False), -1, indices)
            codes[at : at + len(c)] = lookup[local.astype(np.int64)]
            at += len(c)
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(found))
    if name in _NUMPY:  # into one array, block by block: no whole-column temporaries
        size = sum(len(c) for c in chunks)
        values: np.ndarray = np.empty(size, dtype=_NUMPY[name])
        mask = np.zeros(size, dtype=bool)
        at = 0
        for c in chunks:
            part = c.to_numpy(zero_copy_only=False)  # nulls: NaN for floats, None for others
            if c.null_count:
                missing = c.is_null().to_numpy(zero_copy_only=False)
                mask[at : at + len(c)] = missing
                part = np.where(missing, 0, part)
            if name == "fetched_at":
                part = part * 1e9
            values[at : at + len(c)] = part
            at += len(c)
        if name == "final":
            return values
        if name == "fetched_at":
            values[mask] = np.iinfo(np.int64).min  # NaT
            # Naive nanoseconds read as UTC's wall clock: the instants themselves.
            return pd.DatetimeIndex(values.view("datetime64[ns]"), dtype=dtype, copy=False).array
        return pd.arrays.IntegerArray(values, mask)
    joined = pa.chunked_array(chunks, chunks[0].type)
    return pd.arrays.ArrowStringArray(joined)  # the blocks' own buffers


def blocks_frame(blocks: list[Block], *, consume: bool = False) -> pd.DataFrame:
    """The typed DataFrame of blocks (the `OPTIONAL_COLUMNS` only where a row has a value).

    ``consume=True`` lets go of each block's column once converted (the text columns are
    the blocks' own buffers, kept; the others are copied), so they never all live twice.
    """
    if not blocks:
        blocks = [seal([])]
    data = {}
    for k, name in enumerate(COLUMNS):
        chunks = [block[k] for block in blocks]
        if name in OPTIONAL_COLUMNS and all(c.null_count == len(c) for c in chunks):
            continue
        data[name] = _pandas(name, chunks)
        if consume:
            del chunks
            for block in blocks:
                block[k] = None
    return pd.DataFrame(data, copy=False)


class RowStore:
    """A run's rows by item index, compact: rows arriving are kept as tuples in their block of
    `BLOCK` items until the block is full, then sealed into Arrow (see above). A row replacing a
    sealed one (a later pass) is kept aside and merged when the frame is made.

    ``final`` and ``present`` are boolean arrays by item, so what is left to ask is found
    without looking at any row.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.final = np.zeros(size, dtype=bool)
        self.present = np.zeros(size, dtype=bool)
        self._open: dict[int, list[Any]] = {}  # block number -> rows (None: not yet)
        self._empty: dict[int, int] = {}  # block number -> its slots still empty
        self._sealed: dict[int, Block] = {}
        self._over: dict[int, Row] = {}  # item -> the row replacing a sealed one

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Row | None:
        b, j = divmod(i, BLOCK)
        block = self._open.get(b)
        if block is not None:
            return block[j]
        sealed = self._sealed.get(b)
        if sealed is None:
            return None
        over = self._over.get(i)
        if over is not None:
            return over
        return Row._make(column[j].as_py() for column in sealed)

    def __setitem__(self, i: int, row: Row | None) -> None:
        if row is None:
            return
        b, j = divmod(i, BLOCK)
        self.present[i] = True
        self.final[i] = row.final
        if b in self._sealed:
            self._over[i] = row
            return
        block = self._open.get(b)
        if block is None:
            n = min(BLOCK, self.size - b * BLOCK)
            block = self._open[b] = [None] * n
            self._empty[b] = n
        if block[j] is None:
            self._empty[b] -= 1
        block[j] = row
        if not self._empty[b]:
            self._sealed[b] = seal(block)
            del self._open[b], self._empty[b]

    def __iter__(self) -> Iterator[Row | None]:
        for b in range((self.size + BLOCK - 1) // BLOCK):
            yield from self._block_rows(b)

    def _block_rows(self, b: int) -> list[Row | None]:
        block = self._open.get(b)
        if block is not None:
            return block
        sealed = self._sealed.get(b)
        if sealed is None:
            return [None] * min(BLOCK, self.size - b * BLOCK)
        rows: list[Row | None] = list(unseal(sealed))
        for i in [i for i in self._over if i // BLOCK == b]:
            rows[i - b * BLOCK] = self._over[i]
        return rows

    def todo(self) -> np.ndarray:
        """The items whose row is missing or not final."""
        return np.flatnonzero(~self.final)

    def frame(self, *, consume: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """The frame of the rows present, in item order, and their item indices.
        ``consume=True`` empties the store as it goes (to save memory)."""
        by_block: dict[int, list[int]] = {}
        for i in self._over:
            by_block.setdefault(i // BLOCK, []).append(i)
        blocks = []
        for b in range((self.size + BLOCK - 1) // BLOCK):
            sealed = self._sealed.get(b)
            if sealed is not None and b not in by_block:
                blocks.append(sealed)
                continue
            rows = [row for row in self._block_rows(b) if row is not None]
            if rows:
                blocks.append(seal(rows))
        present = np.flatnonzero(self.present)
        if consume:
            self._sealed.clear()
            self._open.clear()
            self._over.clear()
        return blocks_frame(blocks, consume=consume), present


def to_frame(
    rows: list, extra: pd.DataFrame | None = None, *, consume: bool = False
) -> pd.DataFrame:
    """Rows as a typed DataFrame, with the user's own columns (``extra``) after them.

    ``consume=True`` empties ``rows`` as it goes (the caller's list, to save memory).
    """
    blocks = []
    for start in range(0, len(rows), BLOCK):
        stop = min(start + BLOCK, len(rows))
        blocks.append(seal(rows[start:stop]))
        if consume:
            rows[start:stop] = [None] * (stop - start)
    return with_extra(blocks_frame(blocks, consume=True), extra)


def with_extra(frame: pd.DataFrame, extra: pd.DataFrame | None) -> pd.DataFrame:
    """The result columns, then the user's own (renamed where a name clashes)."""
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
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
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
    lists = [
        df[c].astype(object).where(df[c].notna(), None).tolist()
        for c in COLUMNS[: COLUMNS.index("fetched_at")]
    ]
    finals = df["final"].astype(bool).tolist()
    if "workspace" in df.columns:
        workspaces = df["workspace"].astype(object).where(df["workspace"].notna(), None).tolist()
    else:
        workspaces = [None] * len(df)
    return [
        Row(*(col[i] for col in lists), epoch[i], finals[i], workspaces[i])  # type: ignore[call-arg]
        for i in range(len(df))
    ]
