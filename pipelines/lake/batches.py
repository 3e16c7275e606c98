"""Reading a user's batch file (Parquet or CSV) into a frame shaped by the dataset spec."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines.parquet_files import streaming_parquet
from pipelines.usecase import DatasetSpec

_ARROW_TYPES = {
    "string": pa.string(),
    "category": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


class BatchUnreadable(Exception):
    """The file is empty, of an unknown format, or cannot be parsed at all."""


@dataclass(frozen=True)
class Batch:
    source: Path
    batch_id: str
    content: bytes
    frame: pd.DataFrame


def batch_id_of(content: bytes) -> str:
    """A batch is identified by its content: the same file delivered twice is the same batch."""
    return hashlib.sha256(content).hexdigest()[:20]


def batch_id_of_file(path: Path) -> str:
    """`batch_id_of` the file's content, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def _check_readable(path: Path) -> str:
    """The file's format (its suffix); unreadable files raise BatchUnreadable."""
    if not path.exists():
        raise FileNotFoundError(f"batch file not found: {path}")
    size = path.stat().st_size
    if size == 0 or (size < 4_096 and not path.read_bytes().strip()):
        raise BatchUnreadable(f"{path.name} is empty")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".txt"):
        raise BatchUnreadable(f"{path.name}: unsupported format {suffix!r} (use .parquet or .csv)")
    return suffix


def _read_csv(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    text_columns = {n: "str" for n, c in spec.columns.items() if c.type in ("string", "category")}
    # Only empty cells are missing: "n/a" in a numeric column is a wrong type, not a null.
    return pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])


def _with_event_times(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    event_time = spec.event_time
    if event_time in frame.columns and not isinstance(frame[event_time].dtype, pd.DatetimeTZDtype):
        frame[event_time] = pd.to_datetime(frame[event_time], utc=True, errors="coerce", format="ISO8601")
    return frame


def read_batch(path: Path, spec: DatasetSpec) -> Batch:
    """Read a Parquet or CSV file whole; text columns stay text, event time is parsed as UTC."""
    _check_readable(path)
    content = path.read_bytes()
    frame = pd.concat(list(read_chunks(path, spec, None)), ignore_index=True)
    return Batch(path, batch_id_of(content), content, frame)


def read_chunks(path: Path, spec: DatasetSpec, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The file's rows as frames of at most `chunk_rows` rows (None: one frame), in file order; text
    columns stay text and event time is parsed as UTC, as `read_batch` reads them.

    Parquet is read by record batches, so memory follows the chunk; CSV is read whole, because pandas
    infers a CSV column's type per chunk and a column's type is part of what is validated.
    """
    suffix = _check_readable(path)
    try:
        if suffix == ".parquet":
            source = streaming_parquet(path)
            if chunk_rows is None or source.metadata.num_rows <= chunk_rows:
                frames: Iterator[pd.DataFrame] = iter([source.read().to_pandas()])
            else:
                frames = (
                    pa.Table.from_batches([batch], source.schema_arrow).to_pandas()
                    for batch in source.iter_batches(batch_size=chunk_rows)
                )
        else:
            frames = iter([_read_csv(path, spec)])
        for frame in frames:
            yield _with_event_times(frame, spec)
    except BatchUnreadable:
        raise
    except Exception as exc:
        raise BatchUnreadable(f"{path.name} could not be parsed: {exc}") from exc


def conform(frame: pd.DataFrame, spec: DatasetSpec) -> pa.Table:
    """The validated frame as an Arrow table with exactly the spec's columns and types."""
    fields = [
        pa.field(name, _ARROW_TYPES[col.type], nullable=col.nullable) for name, col in spec.columns.items()
    ]
    subset = frame[list(spec.columns)]
    return pa.Table.from_pandas(subset, preserve_index=False).cast(pa.schema(fields))
