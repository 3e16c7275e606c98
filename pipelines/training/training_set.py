"""The point-in-time training set built out of core: the spine and the offline features stream from
the lake into DuckDB, are joined as of each event, split by time and written as Parquet files, so the
step's memory stays flat as the lake grows (DuckDB spills past its limit).

The rows are those of `dataset.build_spine` + `dataset.labelled_rows` + `FeatureStore.training_set`
+ `dataset.temporal_split`, which stay the in-memory reference (tests/unit/test_training_set.py);
rows are ordered by event time, then primary key, where the in-memory path keeps the lake's file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.errors import NoCuratedData
from pipelines.features.as_of import as_of_select, duckdb_session, load_stream
from pipelines.features.sql import quote_identifier as q
from pipelines.usecase import UseCase

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitFiles:
    """The training set's splits, each a Parquet file in the work directory."""

    paths: dict[str, Path]
    rows: dict[str, int]


def _instant(value: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def _count(connection: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> int:
    rows = connection.execute(f"SELECT count(*) FROM {q(table)} WHERE {where}").fetchall()
    return int(rows[0][0]) if rows else 0


def _drop_unobservable(connection: duckdb.DuckDBPyConnection, timestamp: str, horizon: float) -> None:
    """Leave out the spine rows whose label looks past the newest event (see `labelled_rows`)."""
    if not horizon:
        return
    (row,) = connection.execute(f"SELECT max({q(timestamp)}) FROM spine").fetchall()
    if row[0] is None:
        return
    newest = pd.Timestamp(row[0])
    # `t > cutoff` for microsecond times is `t > cutoff` floored to the microsecond.
    cutoff = (newest - pd.Timedelta(days=horizon)).floor("us")
    connection.execute(f"DELETE FROM spine WHERE {q(timestamp)} > {_instant(cutoff)}")
    if not _count(connection, "spine"):
        raise NoCuratedData(
            f"no row is older than task.label_horizon_days ({horizon:g} days) before the newest event "
            f"({newest}): their labels are not observable yet"
        )


def _split_bounds(
    connection: duckdb.DuckDBPyConnection, timestamp: str, valid_fraction: float, test_fraction: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The time quantiles `temporal_split` splits at, from the event-time column alone."""
    times = connection.sql(f"SELECT {q(timestamp)} FROM joined").fetch_arrow_table().column(0).to_pandas()
    if times.empty:
        raise ValueError("cannot split an empty training set")
    valid_start = times.quantile(1 - valid_fraction - test_fraction)
    test_start = times.quantile(1 - test_fraction)
    # `t < b` and `t >= b` for microsecond times are the same against b rounded up to the microsecond.
    return pd.Timestamp(valid_start).ceil("us"), pd.Timestamp(test_start).ceil("us")


def write_splits(
    spine: pa.RecordBatchReader,
    features: pa.RecordBatchReader,
    usecase: UseCase,
    valid_fraction: float,
    test_fraction: float,
    workdir: Path,
    memory_limit: str,
) -> SplitFiles:
    """Join `spine` (curated rows: keys, event time, label, slice columns) to `features` as of each
    event, split at time quantiles, and write train, valid and test Parquet files into `workdir`."""
    dataset = usecase.dataset
    timestamp = dataset.event_time
    with duckdb_session(workdir, memory_limit) as connection:
        spine_columns = load_stream(connection, "spine", spine)
        feature_columns = load_stream(connection, "features", features)
        _drop_unobservable(connection, timestamp, usecase.task.label_horizon_days)
        joined = as_of_select(
            "spine",
            spine_columns,
            "features",
            feature_columns,
            dataset.entity_key,
            timestamp,
            usecase.features.ttl_days,
        )
        connection.execute(f"CREATE TABLE joined AS {joined}")
        connection.execute("DROP TABLE spine")
        connection.execute("DROP TABLE features")
        valid_start, test_start = _split_bounds(connection, timestamp, valid_fraction, test_fraction)
        ts = q(timestamp)
        conditions = {
            "train": f"{ts} < {_instant(valid_start)}",
            "valid": f"{ts} >= {_instant(valid_start)} AND {ts} < {_instant(test_start)}",
            "test": f"{ts} >= {_instant(test_start)}",
        }
        order = ", ".join(q(c) for c in dict.fromkeys([timestamp, *dataset.primary_key]))
        paths, rows = {}, {}
        for name in SPLITS:
            rows[name] = _count(connection, "joined", conditions[name])
            if not rows[name]:
                raise ValueError(
                    f"the {name} split is empty: the data covers too short a period to split by time"
                )
            paths[name] = workdir / f"{name}.parquet"
            target = str(paths[name]).replace("'", "''")
            connection.execute(
                f"COPY (SELECT * FROM joined WHERE {conditions[name]} ORDER BY {order}) "
                f"TO '{target}' (FORMAT PARQUET)"
            )
    return SplitFiles(paths, rows)
