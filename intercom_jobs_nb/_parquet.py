"""Parquet export: a result frame, or a whole checkpoint batch by batch, as a typed Parquet file.

Parquet keeps the dtypes CSV loses: ``status``, ``resource_type`` and ``error_code`` stay
categoricals (dictionary-encoded), ``fetched_at`` stays a UTC timestamp, ``http_status`` and
``attempts`` stay nullable integers. The values are the CSV's, without its formula escaping
(a Parquet file is not opened as a spreadsheet). Both writers are atomic, like `export_csv`: a
temporary file beside the target, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from ._checkpoint import SCHEMA_VERSION, SELECT_ROWS, Checkpoint, _inspect, row_from_db
from ._errors import ConfigurationError
from ._rows import DTYPES, OPEN_CATEGORIES, UTC_TIME, to_frame

__all__ = ["export_parquet", "checkpoint_to_parquet", "arrow_schema", "ARROW_TYPES"]


def _target(path: str | os.PathLike[str]) -> Path:
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise ConfigurationError(f"cannot write {str(target)!r}: it is a folder")
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write {str(target)!r}: no such folder")
    return target


def _atomic(target: Path, write: Callable[[object], None]) -> Path:
    """Call ``write`` with a new temporary file's handle, then move it over ``target``."""
    # Opened like any new file (not mkstemp, which makes it 0600), so the umask sets its mode.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _fixed_type(dtype: Any) -> Any:
    """The Parquet type of a result column of this dtype, if pyarrow's reading may differ."""
    if dtype == "category" or isinstance(dtype, pd.CategoricalDtype):
        return pa.dictionary(pa.int32(), pa.large_string())
    if isinstance(dtype, str) and dtype == UTC_TIME:
        return pa.timestamp("ns", tz="UTC")
    return None


#: The Arrow type of each result column whose type pyarrow cannot tell from every frame: a
#: categorical with no value (every row a success: ``error_code``) would otherwise be a
#: dictionary of nulls, read back as ``object``; times are UTC nanoseconds. The others follow
#: from their dtypes.
ARROW_TYPES: dict[str, Any] = {
    name: _fixed_type(dtype) for name, dtype in DTYPES.items() if _fixed_type(dtype) is not None
}


def arrow_schema(df: pd.DataFrame) -> pa.Schema:
    """The Parquet schema of a frame: pyarrow's reading of its dtypes, with `ARROW_TYPES`."""
    inferred = pa.Schema.from_pandas(df, preserve_index=False)
    for name, kind in ARROW_TYPES.items():
        at = inferred.get_field_index(name)
        if at >= 0:
            inferred = inferred.set(at, pa.field(name, kind))
    return inferred


def with_string_storage(table: pa.Table, df: pd.DataFrame) -> pa.Table:
    """The table, its pandas metadata naming each ``string[pyarrow]`` column's storage.

    pyarrow records such a column's dtype as ``"string"``, which ``pd.read_parquet`` reads as
    the default string storage: ``python`` before pandas 3. Recorded as ``"string[pyarrow]"``,
    it comes back as it was with every pandas.
    """
    metadata = table.schema.metadata or {}
    if b"pandas" not in metadata:
        return table
    pandas_meta = json.loads(metadata[b"pandas"])
    changed = False
    for column in pandas_meta.get("columns", ()):
        name = column.get("name")
        dtype = df.dtypes.get(name) if isinstance(name, str) else None
        if (
            isinstance(dtype, pd.StringDtype)
            and dtype.storage == "pyarrow"
            and column.get("numpy_type") == "string"
        ):
            column["numpy_type"] = "string[pyarrow]"
            changed = True
    if not changed:
        return table
    return table.replace_schema_metadata({**metadata, b"pandas": json.dumps(pandas_meta).encode()})


def _table(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    try:
        table = pa.Table.from_pandas(df, schema=schema or arrow_schema(df), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ConfigurationError(f"cannot write this DataFrame as Parquet: {exc}") from None
    return with_string_storage(table, df)


def export_parquet(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the DataFrame as Parquet, atomically (a half-written file never replaces a good
    one), keeping its dtypes; ``pd.read_parquet`` gives the frame back. ``df`` is not changed.

    Returns:
        The path written, absolute.

    Raises:
        ConfigurationError: the folder does not exist, or a column cannot be stored in Parquet.
    """
    target = _target(path)
    table = _table(df)
    return _atomic(target, lambda handle: pq.write_table(table, handle))


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to a checkpoint, leaving the file exactly as it is."""
    # As `checkpoint._inspect`: immutable (no -wal/-shm files made) unless a -wal is there.
    immutable = "" if path.with_name(path.name + "-wal").exists() else "&immutable=1"
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro{immutable}", uri=True)


def _check_checkpoint(path: Path) -> None:
    """Refuse, leaving it unchanged, a file that is not a job-status checkpoint of this schema."""
    shown = str(path)
    if not path.is_file():
        raise ConfigurationError(f"checkpoint {shown!r}: no such file")
    try:
        meta = _inspect(path, frozenset(Checkpoint.TABLES), Checkpoint.KIND)
    except ConfigurationError as exc:
        raise ConfigurationError(f"not a job-status checkpoint: {exc}") from None
    kind = meta.get("kind", Checkpoint.KIND)
    if kind != Checkpoint.KIND:
        raise ConfigurationError(
            f"{shown!r} is not a job-status checkpoint but a {kind} (it was left unchanged)"
        )
    if meta.get("schema") != SCHEMA_VERSION:
        raise ConfigurationError(
            f"checkpoint {shown!r} was written with schema {meta.get('schema') or '?'}; this "
            f"version reads schema {SCHEMA_VERSION} only (the file was left unchanged)"
        )


def _batches(db: sqlite3.Connection, batch_rows: int) -> Iterator[pd.DataFrame]:
    """The checkpoint's rows by job id, ``batch_rows`` at a time, as typed frames whose
    open categoricals share the whole file's categories (so every row group agrees)."""
    categories = {
        name: sorted(
            value
            for (value,) in db.execute(f"SELECT DISTINCT {name} FROM jobs WHERE {name} IS NOT NULL")
        )
        for name in OPEN_CATEGORIES
    }
    cursor = db.execute(f"{SELECT_ROWS} ORDER BY workspace, job_id")
    first = True
    while True:
        values = cursor.fetchmany(batch_rows)
        if not values and not first:
            return
        rows = [row_from_db(v) for v in values]
        del values
        frame = to_frame(rows, consume=True)
        for name, cats in categories.items():
            if name in frame.columns and (cats or frame[name].cat.categories.size):
                frame[name] = frame[name].cat.set_categories(cats)
        yield frame
        first = False


def checkpoint_to_parquet(
    checkpoint_path: str | os.PathLike[str],
    parquet_path: str | os.PathLike[str],
    *,
    batch_rows: int = 100_000,
) -> Path:
    """Write every row of a job-status checkpoint as Parquet, ``batch_rows`` at a time.

    The checkpoint is read only (never changed) and never held whole in memory: each batch
    becomes one row group. The file has the columns and dtypes `export_parquet` writes for the
    equivalent frame (the checkpoint's `Checkpoint.frame`), rows sorted by ``job_id``. The
    write is atomic.

    Returns:
        The Parquet path written, absolute.

    Raises:
        ConfigurationError: the checkpoint is missing or not a job-status checkpoint (it is
            left unchanged), the Parquet folder does not exist, or ``batch_rows`` is not a
            positive integer.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ConfigurationError(f"batch_rows must be a positive integer, not {batch_rows!r}")
    source = Path(checkpoint_path).expanduser().resolve()
    target = _target(parquet_path)
    if source == target:
        raise ConfigurationError(
            f"{str(target)!r} is the checkpoint itself: pass another path for the Parquet file"
        )
    _check_checkpoint(source)

    def write(handle: object) -> None:
        try:
            db = _connect(source)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot read checkpoint {str(source)!r}: {exc}") from None
        try:
            writer: pq.ParquetWriter | None = None
            try:
                for frame in _batches(db, batch_rows):
                    if writer is None:
                        table = _table(frame)
                        writer = pq.ParquetWriter(handle, table.schema)
                    else:
                        table = _table(frame, writer.schema)
                    del frame
                    writer.write_table(table)
                    del table
            finally:
                if writer is not None:
                    writer.close()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot read checkpoint {str(source)!r}: {exc}") from None
        finally:
            db.close()

    return _atomic(target, write)
