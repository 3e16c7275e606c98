"""Builds the expectation suite of a dataset from its declarative spec.

Schema expectations (columns, nulls, types, ranges, allowed sets, primary key) and statistical
ones (row counts, means, null fractions). Types: numeric columns are checked by dtype; string
columns accept any text; timestamps are parsed when the batch is read, so an unparseable time
surfaces as a null in the event-time column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from great_expectations import expectations as gxe

from pipelines.usecase import ColumnSpec, DatasetSpec

_NUMERIC_DTYPES = {
    "int": ["int64", "int32", "int16", "int8", "Int64", "Int32"],
    "float": ["float64", "float32", "Float64", "int64", "int32", "Int64"],
    "bool": ["bool", "boolean", "int64"],
}


def _column_expectations(name: str, column: ColumnSpec, max_null: float | None, now: datetime) -> list[Any]:
    found: list[Any] = [gxe.ExpectColumnToExist(column=name)]
    if not column.nullable or max_null is not None:
        mostly = 1.0 - (max_null or 0.0)
        found.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=mostly))
    if column.type in _NUMERIC_DTYPES:
        found.append(
            gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=_NUMERIC_DTYPES[column.type])
        )
    if column.min is not None or column.max is not None:
        found.append(
            gxe.ExpectColumnValuesToBeBetween(column=name, min_value=column.min, max_value=column.max)
        )
    earliest, latest = column.time_bounds(now)
    if earliest is not None or latest is not None:
        found.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=earliest, max_value=latest))
    if column.allowed and not column.open:
        found.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(column.allowed)))
    return found


def expectations_for(spec: DatasetSpec, now: datetime | None = None) -> list[Any]:
    """Every expectation the dataset spec implies for a batch ingested at `now`, in a stable order."""
    now = now or datetime.now(UTC)
    stats = spec.statistics
    found: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=stats.min_rows, max_value=stats.max_rows)
    ]
    for name, column in spec.columns.items():
        found += _column_expectations(name, column, stats.max_null_fraction.get(name), now)
    if len(spec.primary_key) == 1:
        found.append(gxe.ExpectColumnValuesToBeUnique(column=spec.primary_key[0]))
    else:
        found.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.primary_key)))
    for name, (low, high) in stats.mean_between.items():
        found.append(gxe.ExpectColumnMeanToBeBetween(column=name, min_value=low, max_value=high))
    return found
