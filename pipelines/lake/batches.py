"""Reading a user's batch file (Parquet or CSV) into a frame shaped by the dataset spec."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

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


def read_batch(path: Path, spec: DatasetSpec) -> Batch:
    """Read a Parquet or CSV file; text columns stay text, event time is parsed as UTC."""
    if not path.exists():
        raise FileNotFoundError(f"batch file not found: {path}")
    content = path.read_bytes()
    if not content.strip():
        raise BatchUnreadable(f"{path.name} is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(io.BytesIO(content))
        elif suffix in (".csv", ".txt"):
            text_columns = {n: "str" for n, c in spec.columns.items() if c.type in ("string", "category")}
            # Only empty cells are missing: "n/a" in a numeric column is a wrong type, not a null.
            frame = pd.read_csv(
                io.BytesIO(content), dtype=text_columns, keep_default_na=False, na_values=[""]
            )
        else:
            raise BatchUnreadable(f"{path.name}: unsupported format {suffix!r} (use .parquet or .csv)")
    except BatchUnreadable:
        raise
    except Exception as exc:
        raise BatchUnreadable(f"{path.name} could not be parsed: {exc}") from exc
    event_time = spec.event_time
    if event_time in frame.columns and not isinstance(frame[event_time].dtype, pd.DatetimeTZDtype):
        frame[event_time] = pd.to_datetime(frame[event_time], utc=True, errors="coerce", format="ISO8601")
    return Batch(path, batch_id_of(content), content, frame)


def conform(frame: pd.DataFrame, spec: DatasetSpec) -> pa.Table:
    """The validated frame as an Arrow table with exactly the spec's columns and types."""
    fields = [
        pa.field(name, _ARROW_TYPES[col.type], nullable=col.nullable) for name, col in spec.columns.items()
    ]
    subset = frame[list(spec.columns)]
    return pa.Table.from_pandas(subset, preserve_index=False).cast(pa.schema(fields))
