"""The feature view as SQL gives the in-process features row for row, on the embedded engine and in
Athena's dialect (Trino): the Trino text is parsed as Trino and run back through DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from mlops.paths import PACKAGE_ROOT
from pipelines.datagen.examples import generate_example
from pipelines.features.compute import FEATURE_TIME, compute_window_features
from pipelines.features.sql import feature_query
from pipelines.usecase import UseCase, load_usecase

USECASES = ("churn", "store_demand", "firm_distress")


def _events(usecase: UseCase, rows: int = 4_000) -> pd.DataFrame:
    """Example events with the hard cases added: ties at one instant, events exactly a window apart,
    missing values, and a file order that is not the key order."""
    dataset = usecase.dataset
    events = generate_example(usecase, rows, seed=5)
    key, time = dataset.entity_key, dataset.event_time
    first = events.iloc[0]
    ties = events.sample(40, random_state=1).assign(**{key: first[key], time: first[time]})
    window = pd.Timedelta(days=min(usecase.features.windows_days))
    edges = events.sample(40, random_state=2).assign(**{key: first[key]})
    edges[time] = first[time] + window * np.arange(1, 41) // 4
    extra = pd.concat([ties, edges])
    for pk in dataset.primary_key:
        extra[pk] = [f"x{i}" if isinstance(v, str) else v + 10**9 + i for i, v in enumerate(extra[pk])]
    numeric = [c for c, spec in dataset.columns.items() if spec.type == "float" and spec.nullable]
    if numeric:
        extra.loc[extra.index[::3], numeric[0]] = np.nan
    return pd.concat([events, extra]).sample(frac=1.0, random_state=3).reset_index(drop=True)


def _run_duckdb(sql: str, events: pd.DataFrame, source: str) -> pd.DataFrame:
    import duckdb

    connection = duckdb.connect()
    connection.register(source, pa.Table.from_pandas(events, preserve_index=False))
    return connection.sql(sql).to_arrow_table().to_pandas()


def _assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, key: str) -> None:
    assert list(actual.columns) == list(expected.columns)
    order = [key, FEATURE_TIME]
    actual = actual.sort_values(order, kind="stable").reset_index(drop=True)
    expected = expected.sort_values(order, kind="stable").reset_index(drop=True)
    assert len(actual) == len(expected)
    for column in expected.columns:
        left, right = actual[column], expected[column]
        if column == FEATURE_TIME:
            assert (pd.to_datetime(left, utc=True) == pd.to_datetime(right, utc=True)).all()
        elif pd.api.types.is_numeric_dtype(right):
            assert np.allclose(
                left.astype(float), right.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True
            ), column
        else:
            assert (left.astype(object).fillna("<NA>") == right.astype(object).fillna("<NA>")).all(), column


@pytest.fixture(scope="module", params=USECASES)
def case(request: pytest.FixtureRequest) -> tuple[UseCase, pd.DataFrame, pd.DataFrame]:
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / f"{request.param}.yaml")
    events = _events(usecase)
    return usecase, events, compute_window_features(events, usecase)


def test_embedded_engine_gives_the_in_process_features(case) -> None:
    usecase, events, expected = case
    query = feature_query(usecase)
    _assert_same_rows(
        _run_duckdb(query.sql, events[list(query.columns)], query.source),
        expected,
        usecase.dataset.entity_key,
    )


def test_athena_dialect_is_trino_and_means_the_same(case) -> None:
    usecase, events, expected = case
    query = feature_query(usecase, dialect="trino")
    tree = sqlglot.parse_one(query.sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert not list(tree.find_all(exp.Anonymous)), "every function must be one Trino knows"
    functions = {type(node).__name__ for node in tree.find_all(exp.Func)}
    assert "TimeToUnix" in functions and "Epoch" not in query.sql.upper().replace("TO_UNIXTIME", "")
    back = sqlglot.transpile(query.sql, read="trino", write="duckdb")[0]
    _assert_same_rows(
        _run_duckdb(back, events[list(query.columns)], query.source), expected, usecase.dataset.entity_key
    )


def test_unknown_dialect_is_one_clear_error(case) -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'oracle'"):
        feature_query(case[0], dialect="oracle")
