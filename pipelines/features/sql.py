"""The feature view as one SQL query: the same features `compute.py` computes, for a query engine.

Written once (in DuckDB's dialect, the embedded engine) from the use case's feature view, and
transpiled by sqlglot to the dialect of the engine that runs it (Trino for Athena). The semantics
are `compute_window_features`' exactly, in no particular row order: windows are (t - days, t] over
whole seconds with ties at t included; several events of an entity at one instant give one row,
carrying the values of the event with the greatest primary key; lags look back over those rows; a
mean is the window's sum over its event count.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.features.compute import FEATURE_TIME
from pipelines.features.incremental import source_columns
from pipelines.usecase import UseCase

SOURCE_DIALECT = "duckdb"
DIALECTS = ("duckdb", "trino")


@dataclass(frozen=True)
class FeatureQuery:
    """The query and what it reads: `source` is the relation name the query selects from."""

    sql: str
    dialect: str
    source: str
    columns: tuple[str, ...]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def feature_query(usecase: UseCase, source: str = "events", dialect: str = SOURCE_DIALECT) -> FeatureQuery:
    """The SQL computing the use case's feature rows from `source` (its curated events)."""
    import sqlglot

    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    dataset, view = usecase.dataset, usecase.features
    key, time = quote_identifier(dataset.entity_key), quote_identifier(dataset.event_time)
    tie_order = ", ".join(f"{quote_identifier(k)} DESC" for k in dataset.primary_key)

    numbers = dict.fromkeys(a.column for a in view.aggregations if a.column)
    numbers.update(dict.fromkeys(c for c in view.latest if not dataset.columns[c].is_categorical))
    numbers.update(dict.fromkeys(lag.column for lag in view.lags))
    numeric_sources = [
        f"CAST({quote_identifier(c)} AS DOUBLE) AS {quote_identifier('n_' + c)}" for c in numbers
    ]
    text_sources = [
        f"CAST({quote_identifier(c)} AS VARCHAR) AS {quote_identifier('c_' + c)}"
        for c in dict.fromkeys(
            [s.column for s in view.category_counts]
            + [c for c in view.latest if dataset.columns[c].is_categorical]
        )
    ]
    keys = [quote_identifier(k) for k in dict.fromkeys([*dataset.primary_key, dataset.entity_key])]
    staged = ",\n    ".join(
        [*keys, time, f"CAST(FLOOR(EPOCH({time})) AS BIGINT) AS _second", *numeric_sources, *text_sources]
    )

    windowed: list[str] = []
    for days in view.windows_days:
        frame = f"OVER (PARTITION BY {key} ORDER BY _second RANGE BETWEEN {days * 86_400 - 1} PRECEDING AND CURRENT ROW)"
        count = f"COUNT(*) {frame}"
        for agg in view.aggregations:
            name = quote_identifier(agg.feature_name(days))
            if agg.function == "count" or agg.column is None:
                windowed.append(f"CAST({count} AS BIGINT) AS {name}")
                continue
            value = quote_identifier("n_" + agg.column)
            total = f"SUM(COALESCE({value}, 0)) {frame}"
            if agg.function == "sum":
                windowed.append(f"{total} AS {name}")
            elif agg.function == "mean":
                windowed.append(f"{total} / GREATEST({count}, 1) AS {name}")
            else:
                windowed.append(f"MAX({value}) {frame} AS {name}")
        for counted in view.category_counts:
            column = quote_identifier("c_" + counted.column)
            for value in counted.values:
                hits = f"SUM(CASE WHEN {column} = {_text(value)} THEN 1 ELSE 0 END) {frame}"
                windowed.append(
                    f"CAST({hits} AS BIGINT) AS {quote_identifier(counted.feature_name(value, days))}"
                )
    latest = [
        f"{quote_identifier(('c_' if dataset.columns[c].is_categorical else 'n_') + c)} AS {quote_identifier(c)}"
        for c in view.latest
    ]
    lag_sources = [
        f"{quote_identifier('n_' + c)} AS {quote_identifier('lag_' + c)}"
        for c in dict.fromkeys(g.column for g in view.lags)
    ]
    per_event = ",\n    ".join(
        [
            f"{key} AS {key}",
            f"{time} AS {quote_identifier(FEATURE_TIME)}",
            *windowed,
            *latest,
            *lag_sources,
            f"ROW_NUMBER() OVER (PARTITION BY {key}, {time} ORDER BY {tie_order}) AS _tie",
        ]
    )
    # compute.py's order: per window, the aggregations then the category counts.
    features = [key, quote_identifier(FEATURE_TIME)]
    for days in view.windows_days:
        features += [quote_identifier(agg.feature_name(days)) for agg in view.aggregations]
        features += [
            quote_identifier(c.feature_name(v, days)) for c in view.category_counts for v in c.values
        ]
    features += [quote_identifier(c) for c in view.latest]
    for lag in view.lags:
        lag_source = quote_identifier("lag_" + lag.column)
        for period in lag.periods:
            lagged = f"LAG({lag_source}, {period}) OVER (PARTITION BY {key} ORDER BY {quote_identifier(FEATURE_TIME)})"
            features.append(f"{lagged} AS {quote_identifier(f'{lag.column}_lag{period}')}")
            if lag.difference:
                features.append(
                    f"{lag_source} - {lagged} AS {quote_identifier(f'{lag.column}_diff{period}')}"
                )
    sql = (
        f"WITH staged AS (\n  SELECT\n    {staged}\n  FROM {source}\n),\n"
        f"per_event AS (\n  SELECT\n    {per_event}\n  FROM staged\n)\n"
        # No ORDER BY: the rows are consumed in any order (the offline table is written as they
        # come), and a final sort of the whole result cost a third of the query at 10 M rows.
        f"SELECT\n  {', '.join(features)}\nFROM per_event\nWHERE _tie = 1"
    )
    if dialect != SOURCE_DIALECT:
        sql = sqlglot.transpile(sql, read=SOURCE_DIALECT, write=dialect, pretty=True)[0]
    return FeatureQuery(sql, dialect, source, tuple(source_columns(usecase)))
