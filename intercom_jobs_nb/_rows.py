"""The result row: its fields, statuses and DataFrame dtypes, and whether it is final.

A row is a `Row` (a `typing.NamedTuple`: read by name, at a tuple's cost), built only by the
constructors here, so the one rule for ``final`` is applied once, when the answer is read:

- a job that answered ``success`` or ``failed`` is final; ``pending`` is not;
- a failed fetch is final unless `codes.is_transient` says asking again may succeed;
- a row for an id not asked yet (`unasked_row`) is not final.

Where a change goes: a new column is one field of `Row`, which declares its `Column` (dtype,
Arrow type, whether it is Intercom's text, its type in the checkpoint): the frames, the Arrow
blocks, the checkpoint's table, Parquet and the CSV's escaping follow from `DECLARED`. Bump
``checkpoint.SCHEMA_VERSION`` with it, with the SQL that adds it to older files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, NamedTuple, get_type_hints

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from . import _codes as C
from ._errors import ConfigurationError
from ._warnings import warn

__all__ = [
    "Row",
    "Column",
    "columns_of",
    "DECLARED",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "FINAL_INDEX",
    "STATUSES",
    "FINAL_STATUSES",
    "DTYPES",
    "OPEN_CATEGORIES",
    "STATUS_DTYPE",
    "UTC_TIME",
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
    "typed",
    "records_frame",
]


class Column(NamedTuple):
    """How one column of a kind of row is kept, declared once on the row's field (``field:
    Annotated[type, Column(...)]``, as `Row`, ``ledger.EnqueueRow`` and ``tickets.TicketRow``
    do); every list of columns is read from these declarations (`columns_of`): the frame's
    dtypes, the Arrow blocks, the checkpoint's and the ledger's tables, the columns
    `export_csv` escapes."""

    #: Its DataFrame dtype; None: not a column of the frame (read by the code that builds it).
    dtype: Any
    #: The Arrow type a sealed block holds it as (`Row`'s columns only: other rows have none).
    arrow: Any = None
    #: The NumPy type its frame column is built from, block by block; None: Arrow text or
    #: categories (``fetched_at``: seconds in the rows, nanoseconds in the frame).
    numpy: Any = None
    #: Text that comes from Intercom (or a server posing as it): `export_csv` escapes it.
    intercom_text: bool = False
    #: Its type and constraints in the SQLite file that stores such rows ("": values as given);
    #: None: not stored there.
    sql: str | None = ""
    #: In a frame only when some row has a value (``workspace``: a run of one has none).
    optional: bool = False
    #: Its name in a frame, when not the field's (a ticket's ``http_status`` is the frame's
    #: ``ticket_http_status``).
    frame_name: str | None = None
    #: The field's name; filled by `columns_of`.
    name: str = ""

    @property
    def label(self) -> str:
        """The column's name in a frame."""
        return self.frame_name or self.name


def columns_of(row_type: type) -> tuple[Column, ...]:
    """The `Column` declared on each field of a row type (a ``NamedTuple``), in field order.

    Raises:
        TypeError: a field declares no `Column`.
    """
    hints = get_type_hints(row_type, include_extras=True)
    found = []
    for name in row_type._fields:  # type: ignore[attr-defined]
        declared = [m for m in getattr(hints[name], "__metadata__", ()) if isinstance(m, Column)]
        if len(declared) != 1:
            raise TypeError(f"{row_type.__name__}.{name} must declare one Column (Annotated)")
        found.append(declared[0]._replace(name=name))
    return tuple(found)


STATUSES = ("pending", "success", "failed")
FINAL_STATUSES = frozenset({"success", "failed"})
STATUS_DTYPE = pd.CategoricalDtype(list(STATUSES))
#: Text columns are Arrow strings whatever pandas' default (pyarrow is a dependency).
STRING = pd.StringDtype("pyarrow")
#: A time: UNIX seconds in the rows (None for none), UTC times in the frame.
UTC_TIME = "datetime64[ns, UTC]"
_TEXT = Column(STRING, pa.large_string())  # what pandas' string[pyarrow] holds: no conversion
_INTERCOM_TEXT = _TEXT._replace(intercom_text=True)
_INT16 = Column("Int16", pa.int16(), np.int16)
_CATEGORY = Column("category", pa.large_string())


class Row(NamedTuple):
    """One job's result. ``status`` is None when the job could not be read (see
    ``error_code``); ``final`` says whether asking again could change the row.

    Each field declares its column once (`Column`): a new column is one field here (and a
    bump of ``checkpoint.SCHEMA_VERSION``, with the SQL that brings older files to it).
    """

    job_id: Annotated[str, _TEXT._replace(sql="TEXT NOT NULL")]
    status: Annotated[str | None, Column(STATUS_DTYPE, pa.large_string())]
    resource_type: Annotated[str | None, _CATEGORY._replace(intercom_text=True)]
    resource_id: Annotated[str | None, _INTERCOM_TEXT]
    resource_url: Annotated[str | None, _INTERCOM_TEXT]
    url: Annotated[str | None, _INTERCOM_TEXT]
    http_status: Annotated[int | None, _INT16]
    error_code: Annotated[str | None, _CATEGORY]
    error_message: Annotated[str | None, _INTERCOM_TEXT]
    request_id: Annotated[str | None, _INTERCOM_TEXT]
    attempts: Annotated[int, _INT16]
    #: UNIX seconds, local clock
    fetched_at: Annotated[float | None, Column(UTC_TIME, pa.float64(), np.int64)]
    final: Annotated[bool, Column("bool", pa.bool_(), np.bool_)]
    #: The workspace's name in a run of many (`tokens=`).
    workspace: Annotated[str | None, _CATEGORY._replace(sql="TEXT NOT NULL", optional=True)] = None


#: The declaration of each result column, in order.
DECLARED: tuple[Column, ...] = columns_of(Row)
COLUMNS: tuple[str, ...] = Row._fields
DTYPES: dict[str, Any] = {c.name: c.dtype for c in DECLARED}
#: Columns a frame has only when some row has a value (a run of one workspace has none).
OPTIONAL_COLUMNS = frozenset(c.name for c in DECLARED if c.optional)
REQUIRED_COLUMNS = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)
FINAL_INDEX = COLUMNS.index("final")
#: The categoricals whose categories come from the rows (``status``'s are fixed; note that
#: ``STATUS_DTYPE == "category"`` is true in pandas, hence the ``isinstance``).
OPEN_CATEGORIES = tuple(n for n, d in DTYPES.items() if isinstance(d, str) and d == "category")


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


# Rows are built by keyword (a column added cannot shift another's value), through `Row.__new__`
# itself: calling the class with keywords goes through ``type.__call__``, which first packs them
# into a dict (some 450 ns a row more, on the path of every answer).
_new_row = Row.__new__


def typed(values: pd.Series, dtype: Any) -> pd.Series:
    """A column of plain values (None for missing; times as UNIX seconds) in its declared dtype."""
    if isinstance(dtype, str) and dtype == UTC_TIME:
        return utc_from_seconds(values)
    return values.astype(dtype)


def records_frame(rows: Sequence[tuple[Any, ...]], row_type: type) -> pd.DataFrame:
    """Rows of a kind other than `Row` (an enqueue's, a ticket's) as a DataFrame of the columns
    their type declares (a `Column` with a dtype), named by `Column.label`, each in its dtype."""
    plain = pd.DataFrame.from_records(rows, columns=row_type._fields)  # type: ignore[attr-defined]
    declared = [c for c in columns_of(row_type) if c.dtype is not None]
    return pd.DataFrame({c.label: typed(plain[c.name], c.dtype) for c in declared})


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
    return _new_row(
        Row,
        job_id=job_id,
        status=status,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_url=resource_url,
        url=url,
        http_status=200,
        error_code=None,
        error_message=None,
        request_id=request_id,
        attempts=attempts,
        fetched_at=fetched_at,
        final=status in FINAL_STATUSES,
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
    return _new_row(
        Row,
        job_id=job_id,
        status=None,
        resource_type=None,
        resource_id=None,
        resource_url=None,
        url=url,
        http_status=http_status,
        error_code=code,
        error_message=message,
        request_id=request_id,
        attempts=attempts,
        fetched_at=time.time(),
        final=not C.is_transient(http_status, code),
    )


def unasked_row(job_id: str) -> Row:
    """A placeholder for an id not asked yet (never final)."""
    return _new_row(
        Row,
        job_id=job_id,
        status=None,
        resource_type=None,
        resource_id=None,
        resource_url=None,
        url=None,
        http_status=None,
        error_code=None,
        error_message=None,
        request_id=None,
        attempts=0,
        fetched_at=None,
        final=False,
    )


# -- rows <-> DataFrame -------------------------------------------------------------------------
#
# Rows are kept as Python tuples only while they arrive: every `BLOCK` of them is sealed into one
# Arrow array per column (strings as Arrow strings, repeated values dictionary-encoded), about
# 180 bytes a row instead of some 550 as tuples of str. The DataFrame's string columns are those
# same Arrow buffers (pandas' ``string[pyarrow]``, no copy); the others are converted once.

BLOCK = 8192
_ARROW: dict[str, Any] = {c.name: c.arrow for c in DECLARED}
# Our blocks live in the C library's allocator: Arrow's default (mimalloc) keeps freed pages,
# which for a run of a million rows costs about 150 bytes a row of resident memory more.
POOL = pa.system_memory_pool()
_CATEGORIES = frozenset(
    name
    for name, dtype in DTYPES.items()
    if isinstance(dtype, pd.CategoricalDtype) or dtype == "category"
)
#: Columns kept as UNIX seconds in the rows and as times in the frame.
_TIMES = frozenset(n for n, d in DTYPES.items() if isinstance(d, str) and d == UTC_TIME)
Block = list[Any]  # one Arrow array per column of COLUMNS


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


_NUMPY = {c.name: c.numpy for c in DECLARED if c.numpy is not None}


def _pandas(name: str, chunks: list[Any]) -> Any:
    """One DataFrame column from its blocks' Arrow arrays, in ``DTYPES[name]``."""
    dtype = DTYPES[name]
    if name in _CATEGORIES:
        # Each block has its own dictionary: map every block's codes onto the sorted union.
        found = sorted({v for c in chunks for v in c.dictionary.to_pylist() if v is not None})
        if isinstance(dtype, pd.CategoricalDtype):
            found = list(dtype.categories)
        where = {v: k for k, v in enumerate(found)}
        codes: np.ndarray[tuple[int], np.dtype[np.signedinteger[Any]]] = np.empty(
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
            if name in _TIMES:
                part = part * 1e9
            values[at : at + len(c)] = part
            at += len(c)
        if dtype == "bool":
            return values
        if name in _TIMES:
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
        self._open: dict[int, list[Row | None]] = {}  # block number -> rows (None: not yet)
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
    rows: list[Any], extra: pd.DataFrame | None = None, *, consume: bool = False
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
    values = {name: _row_values(df, name) for name in COLUMNS}
    return [Row._make(row) for row in zip(*(values[name] for name in COLUMNS), strict=True)]


def _row_values(df: pd.DataFrame, name: str) -> list[Any]:
    """One column of a frame as `Row` holds it: None for missing, times as UNIX seconds."""
    if name not in df.columns:  # an optional column
        return [None] * len(df)
    column = df[name]
    if name in _TIMES:
        if not column.isna().any():
            return (column.astype("int64") / 1e9).tolist()
        return [None if pd.isna(t) else t.timestamp() for t in column]
    if DTYPES[name] == "bool":
        return column.astype(bool).tolist()
    return column.astype(object).where(column.notna(), None).tolist()
