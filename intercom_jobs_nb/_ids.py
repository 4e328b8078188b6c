"""Job ids in: what the user hands us (list, Series, DataFrame, file) becomes checked, distinct ids.

An id is checked before any request is made: Intercom's job ids are short tokens of letters,
digits, ``_`` and ``-``. Anything else (``/``, ``?``, ``#``, ``..``, inner whitespace, control
characters, empty, overlong) would change the URL we send the token to, so it becomes an
``invalid_job_id`` row and is never sent.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from . import _textfiles as textfiles
from ._errors import ConfigurationError
from ._warnings import warn

__all__ = [
    "check_job_id",
    "read_job_ids",
    "read_ids_file",
    "ArrowIds",
    "workspace_names",
    "JobIds",
    "MAX_JOB_ID_LENGTH",
    "ID_FILE_SUFFIXES",
]

MAX_JOB_ID_LENGTH = 128
_JOB_ID = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_ID = f"^{_JOB_ID.pattern}$"  # the same rule, for Arrow's regex kernel (RE2)
_NUMERIC_ID = "^[1-9][0-9]{0,17}$"  # a plain number that an int64 holds, written one way only
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


class ArrowIds(Sequence[str]):
    """Ids held as one Arrow string array: about 12 bytes an id where a list of Python str
    takes about 65, so a file of millions of ids costs the run little memory. Reads like a
    list of str (an item is made when asked: the engine asks one per request)."""

    __slots__ = ("_array",)
    _CHUNK = 1 << 16

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._array[index].to_pylist()
        return self._array[int(index)].as_py()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._array), self._CHUNK):
            yield from self._array.slice(start, self._CHUNK).to_pylist()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ArrowIds):
            return self._array.equals(other._array)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        shown = self[:5]
        more = ", ..." if len(self) > 5 else ""
        return f"ArrowIds({', '.join(map(repr, shown))}{more}; {len(self):,} ids)"


@dataclass
class JobIds:
    """Distinct checked ids in first-seen order, the bad ones, and the user's own columns."""

    ids: Sequence[str]  # a list, or ArrowIds for a file
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


def _column_names(header: list[str]) -> list[str]:
    """A header's cells as distinct column names, as pandas names them (``Unnamed: 2`` for an
    empty cell, ``a.1`` for a second ``a``)."""
    names: list[str] = []
    for number, cell in enumerate(header):
        name = cell if cell != "" else f"Unnamed: {number}"
        base, n = name, 0
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.append(name)
    return names


def _first_records(text: str, delimiter: str) -> tuple[list[list[str]], int]:
    """The first two records of a table's head (empty lines skipped, as the reader skips
    them), and how many lines end with the first (the lines a header takes, with the empty
    ones before it: pyarrow's ``skip_rows`` counts those)."""
    records: list[list[str]] = []
    lines = 0
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for record in reader:
        if record:
            records.append(record)
            lines = lines or reader.line_num
            if len(records) == 2:
                break
    return records, lines


def _arrow_codec(codec: str) -> str:
    """pyarrow's name of a codec: its own UTF-8 reader (which skips a UTF-8 mark) or Python's."""
    return "utf8" if codec in ("utf-8", "utf-8-sig") else codec


def _not_read(path: Path, name: str, codec: str, exc: Exception) -> ConfigurationError:
    """The error of a file pyarrow could not read: the one-line refusal of text that is not
    what it should be (`textfiles`), else the reader's own reason."""
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc):
        if _arrow_codec(codec) == "utf8":
            textfiles.locate_bad_utf8(path, name)
        mark = codec.removesuffix("-sig").upper()
        return textfiles.not_text(name, f"it is not valid {mark}, as its byte-order mark says")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ConfigurationError(f"cannot read {name} as a table: {reason}")


def _table_ids(path: Path, name: str, codec: str, head: str) -> JobIds:
    """A .csv (or a tab-separated .txt) file's ids, with its other columns: the file is read
    by pyarrow's CSV reader (in blocks, on all cores), every cell as text, and the ids are
    checked and made distinct as one Arrow array (`_from_arrow`), never as millions of Python
    objects."""
    delimiter = textfiles.separator(next((x for x in head.splitlines() if x.strip()), ""))
    records, header_lines = _first_records(head, delimiter)
    if not records:
        return JobIds([])
    header = _has_header(records[0], records[1] if len(records) > 1 else None)
    if header:
        names = _column_names(records[0])
        if "job_id" not in names:
            ids_column = [c for c in names if _is_id_column_name(c)] or names
            names[names.index(ids_column[0])] = "job_id"
    else:
        names = ["job_id", *(f"column_{n}" for n in range(2, len(records[0]) + 1))]
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(
                column_names=names,
                skip_rows=header_lines if header else 0,
                encoding=_arrow_codec(codec),
            ),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _not_read(path, name, codec, exc) from None
    others = table.drop_columns(["job_id"])
    if "workspace" in others.column_names:  # ids are distinct per workspace: the frame's rule
        return _from_frame(table.to_pandas())
    extra = others.to_pandas() if others.num_columns else None
    values = table.column("job_id")  # its chunks as read: no copy
    del table, others
    return _from_arrow(values, extra)


# A .txt is read as a table of one column: a separator people never type (ASCII's unit
# separator), and no quoting, so a line is one cell exactly as written.
_LINE_PARSE = dict(delimiter="\x1f", quote_char=False, escape_char=False)


def _line_ids(path: Path, name: str, codec: str) -> JobIds:
    """A .txt file's ids: one a line, blank lines and ``#`` comments skipped; read by pyarrow's
    CSV reader (in blocks) and filtered by Arrow kernels, not line by line in Python."""
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=["line"], encoding=_arrow_codec(codec)),
            parse_options=pa_csv.ParseOptions(**_LINE_PARSE),
            convert_options=pa_csv.ConvertOptions(
                column_types={"line": pa.string()}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _not_read(path, name, codec, exc) from None
    lines = table.column("line")
    del table
    skipped = pc.match_substring_regex(lines, r"^\s*(#|$)")  # a blank line or a comment
    if pc.any(skipped).as_py():
        lines = lines.filter(pc.invert(skipped))
    return _from_arrow(lines, None)


def _all_match(values: pa.ChunkedArray, pattern: str) -> bool:
    return pc.all(pc.match_substring_regex(values, pattern)).as_py() is not False


def _from_arrow(values: pa.ChunkedArray, extra: pd.DataFrame | None) -> JobIds:
    """Checked, distinct ids from an Arrow array of text cells (and the user's columns, a row
    per cell): the rule of `check_job_id` and `_distinct`, as Arrow kernels.

    Ids that are all plain numbers (Intercom's are) are made distinct as 64-bit integers in
    pandas' hash table; other ids by a stable sort (which puts the first-seen of equal ids
    first): for millions of ids either is several times faster than Arrow's hash table of
    strings (``dictionary_encode``), with a fraction of its memory. The cells are trimmed only
    if some are not plain ids already (else a copy of millions of ids for nothing).
    """
    size = len(values)
    numeric = _all_match(values, _NUMERIC_ID)
    if numeric:  # no leading zero, at most 18 digits: one int64 each, and text <-> int is 1:1
        trimmed = values
        repeat = pd.Series(pc.cast(values, pa.int64()).to_numpy()).duplicated().to_numpy()
        duplicates = int(repeat.sum())
        first = np.flatnonzero(~repeat) if duplicates else None
    else:
        trimmed = values if _all_match(values, _PLAIN_ID) else pc.utf8_trim_whitespace(values)
        order = pc.sort_indices(trimmed)
        ordered = trimmed.take(order)
        repeat = np.zeros(size, dtype=bool)
        if size > 1:
            same = pc.equal(ordered.slice(1), ordered.slice(0, size - 1))
            repeat[1:] = same.to_numpy(zero_copy_only=False)
        del ordered
        duplicates = int(repeat.sum())
        first = np.sort(order.to_numpy()[~repeat]) if duplicates else None
        del order
    del values, repeat
    distinct = trimmed
    if first is not None:
        distinct = trimmed.take(pa.array(first))
        if extra is not None:
            extra = extra.iloc[first].reset_index(drop=True)
        warn(f"{duplicates} rows repeat a job_id already seen; the first row of each is kept")
    invalid = {}
    if not numeric:
        good = pc.and_(
            pc.match_substring_regex(distinct, _PLAIN_ID),
            pc.less_equal(pc.utf8_length(distinct), MAX_JOB_ID_LENGTH),
        )
        for text in distinct.filter(pc.invert(good)).to_pylist():
            job_id, problem = check_job_id(text)
            invalid[job_id] = f"job id {job_id!r} {problem or 'is not a job id'}; it was not sent"
    return JobIds(ArrowIds(distinct), invalid, extra, duplicates)


def read_ids_file(path: str | os.PathLike[str], *, name: str | None = None) -> JobIds:
    """The ids of a .txt or .csv file (the rules are `read_job_ids`'); ``name`` (default: the
    path) is what messages call the file, e.g. an uploaded file's own name.

    Raises:
        ConfigurationError: no such file, another suffix, or a file that is not text as
            `textfiles` reads it (one line that says to save it as UTF-8), or not a table.
    """
    path = Path(path)
    name = str(path) if name is None else name
    if not path.is_file():
        raise ConfigurationError(f"no such ids file: {name!r}")
    suffix = path.suffix.lower()
    if suffix not in ID_FILE_SUFFIXES:
        raise ConfigurationError(f"ids file must end in .txt or .csv, got {name!r}")
    raw = textfiles.read_head(path)
    codec = textfiles.sniff(raw)
    head = textfiles.decode(raw, name, final=len(raw) < textfiles.HEAD_BYTES)
    first = next((line for line in head.splitlines() if line.strip()), "")
    if suffix == ".csv" or (not first.lstrip().startswith("#") and "\t" in first):
        return _table_ids(path, name, codec, head)
    return _line_ids(path, name, codec)


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
    ``column_3``... in a file without a header). A table whose first line has more tabs than
    commas is tab-separated; a .txt file whose first line has a tab is such a table (Excel's
    "Unicode Text").

    A file is UTF-8, or what its byte-order mark says (UTF-8, UTF-16, UTF-32): anything else
    (cp1252...) is refused with a message that says to save it as UTF-8 (`textfiles`).

    Raises:
        ConfigurationError: the source is none of those, or the file cannot be read.
    """
    if isinstance(source, pd.DataFrame):
        return _from_frame(source)
    if isinstance(source, JobIds):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if isinstance(source, os.PathLike) or path.suffix.lower() in ID_FILE_SUFFIXES:
            return read_ids_file(path)
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
