"""The expectation suite evaluated exactly, in one vectorised pass over the batch: the gate.

Great Expectations' pandas engine costs 7 to 8x the same checks written by hand on a million rows
(it hashes the whole frame for its batch markers, scans some columns value by value in Python and
resolves a metric graph per expectation). The suite stays Great Expectations' (its expectation
classes, its result format, its data docs): this module computes, with numpy and pandas, the result
each expectation would have in GE's "SUMMARY" format, and `tests/unit/test_validation_parity.py` pins
them to GE's own results on a corpus of good and bad batches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.core.dtypes import dtypes as pandas_dtypes

PARTIAL_UNEXPECTED = 20  # what GE's SUMMARY format keeps of the unexpected values


@dataclass(frozen=True)
class CheckResult:
    """One expectation's outcome on the whole batch, shaped like GE's result."""

    success: bool
    result: dict[str, Any]
    error: str = ""  # set when the expectation could not be evaluated (GE's exception_info)


class _Unevaluable(Exception):
    """The expectation cannot be evaluated on this batch (a missing column, incomparable values)."""


def evaluate(frame: pd.DataFrame, expectations: list[Any]) -> list[CheckResult]:
    """Every expectation's exact result on `frame`, in the suite's order."""
    results = []
    for expectation in expectations:
        evaluator = _EVALUATORS.get(expectation.expectation_type)
        if evaluator is None:
            raise ValueError(f"no exact evaluation for {expectation.expectation_type}")
        try:
            results.append(evaluator(frame, expectation))
        except _Unevaluable as exc:
            results.append(CheckResult(False, {}, str(exc)))
    return results


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise _Unevaluable(f"column {name!r} is not in the batch")
    return frame[name]


def _plain(value: Any) -> Any:
    """Numpy scalars as Python values, as GE reports them."""
    return value.item() if isinstance(value, np.generic) else value


def map_result(
    element_count: int,
    nonnull_count: int | None,
    unexpected: pd.Series,
    count: int | None = None,
) -> dict[str, Any]:
    """GE's SUMMARY result of a map expectation, from the unexpected values (in row order); `count`
    is their number when `unexpected` holds only the first of them."""
    count = len(unexpected) if count is None else count
    examples = [_plain(v) for v in unexpected.iloc[:PARTIAL_UNEXPECTED]]
    result: dict[str, Any] = {
        "element_count": element_count,
        "unexpected_count": count,
        "unexpected_percent": None,
        "partial_unexpected_list": examples,
    }
    total = count / element_count * 100 if element_count else None
    if nonnull_count is None:
        result["unexpected_percent"] = total
    else:
        missing = element_count - nonnull_count
        nonmissing = count / nonnull_count * 100 if element_count and nonnull_count else None
        result.update(
            unexpected_percent=nonmissing,
            missing_count=missing,
            missing_percent=missing / element_count * 100 if element_count else None,
            unexpected_percent_total=total,
            unexpected_percent_nonmissing=nonmissing,
        )
    try:
        counted = Counter(examples).most_common(PARTIAL_UNEXPECTED)
        result["partial_unexpected_counts"] = [
            {"value": v, "count": c} for v, c in sorted(counted, key=lambda x: (-x[1], x[0]))
        ]
    except TypeError:
        result["partial_unexpected_counts"] = [{"error": "partial_exception_counts requires a hashable type"}]
    return result


def mostly_met(considered: int, unexpected: int, mostly: float | None) -> bool:
    if not considered:
        return True  # vacuously true, as in GE
    return (considered - unexpected) / considered >= (1.0 if mostly is None else mostly)


def _column_map(
    frame: pd.DataFrame, expectation: Any, unexpected_of: Callable[[pd.Series], np.ndarray]
) -> CheckResult:
    """A column map expectation: nulls are not considered, the rest must satisfy the condition."""
    column = _column(frame, expectation.column)
    present = column[column.notna().to_numpy()]
    bad = present[np.asarray(unexpected_of(present), dtype=bool)] if len(present) else present
    success = mostly_met(len(present), len(bad), getattr(expectation, "mostly", None))
    return CheckResult(success, map_result(len(column), len(present), bad))


def _row_count(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    rows = len(frame)
    low, high = expectation.min_value, expectation.max_value
    success = (low is None or rows >= low) and (high is None or rows <= high)
    return CheckResult(success, {"observed_value": rows})


def _exists(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    return CheckResult(expectation.column in frame.columns, {})


def _not_null(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    column = _column(frame, expectation.column)
    nulls = column[column.isna().to_numpy()]
    rows = len(column)
    success = not rows or (rows - len(nulls)) / rows >= expectation.mostly
    return CheckResult(success, map_result(rows, None, nulls))


def _type_classes(type_list: list[str]) -> tuple[type, ...]:
    """The classes a value of an object column may be an instance of (GE's resolution of the names)."""
    from great_expectations.expectations.type_comparison import native_type_type_map

    found: list[type] = []
    for name in type_list:
        try:
            found.append(np.dtype(name).type)
        except TypeError:
            for namespace in (pd, pandas_dtypes):
                candidate = getattr(namespace, name, None)
                if isinstance(candidate, type):
                    found.append(candidate)
        found.extend(native_type_type_map(name) or ())
    return tuple(found)


def _in_type_list(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    column = _column(frame, expectation.column)
    type_list = list(expectation.type_list)
    if column.dtype == object:
        classes = _type_classes(type_list)
        return _column_map(
            frame, expectation, lambda values: ~values.map(lambda v: isinstance(v, classes)).to_numpy()
        )
    return CheckResult(str(column.dtype) in type_list, {"observed_value": column.dtype.type.__name__})


def _between_mask(values: pd.Series, low: Any, high: Any) -> np.ndarray:
    """Values outside [low, high]: vectorised for numbers and times, value by value otherwise (as GE)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        inside = np.ones(len(values), dtype=bool)
        if low is not None:
            inside &= (values >= low).to_numpy()
        if high is not None:
            inside &= (values <= high).to_numpy()
        return ~inside
    bounds_are_text = [isinstance(b, str) for b in (low, high) if b is not None]
    outside = np.zeros(len(values), dtype=bool)
    for index, value in enumerate(values):
        if any(isinstance(value, str) != text for text in bounds_are_text):
            raise _Unevaluable(
                "Column values, min_value, and max_value must either be None or of the same type."
            )
        outside[index] = not ((low is None or value >= low) and (high is None or value <= high))
    return outside


def _between(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    low, high = expectation.min_value, expectation.max_value
    return _column_map(frame, expectation, lambda values: _between_mask(values, low, high))


def _in_set(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    allowed = list(expectation.value_set)
    return _column_map(frame, expectation, lambda values: ~values.isin(allowed).to_numpy())


def _unique(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    return _column_map(frame, expectation, lambda values: values.duplicated(keep=False).to_numpy())


def _compound_unique(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    names = list(expectation.column_list)
    for name in names:
        _column(frame, name)
    keys = frame[names]
    considered = keys[~keys.isna().all(axis=1).to_numpy()]
    repeated = considered.duplicated(keep=False).to_numpy()
    bad = considered[repeated]
    unexpected = pd.Series([dict(zip(names, map(_plain, row), strict=True)) for row in bad.itertuples(False)])
    success = mostly_met(len(considered), len(bad), expectation.mostly)
    return CheckResult(success, map_result(len(frame), len(considered), unexpected))


def _mean_between(frame: pd.DataFrame, expectation: Any) -> CheckResult:
    column = _column(frame, expectation.column)
    try:
        mean = _plain(column.mean())
    except TypeError as exc:
        raise _Unevaluable(f"the mean of {expectation.column!r} cannot be computed: {exc}") from exc
    low, high = expectation.min_value, expectation.max_value
    success = bool((low is None or mean >= low) and (high is None or mean <= high))
    return CheckResult(success, {"observed_value": mean})


_EVALUATORS: dict[str, Callable[[pd.DataFrame, Any], CheckResult]] = {
    "expect_table_row_count_to_be_between": _row_count,
    "expect_column_to_exist": _exists,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_type_list": _in_type_list,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_unique": _unique,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_column_mean_to_be_between": _mean_between,
}
