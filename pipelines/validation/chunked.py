"""The expectation suite over a batch read in chunks: the results `checks.evaluate` gives on the whole
batch, with only the primary-key columns held between chunks.

Row-level expectations add up: counts are summed and the first examples (in row order) kept, then
GE's summary is derived again from the totals. Uniqueness needs the whole key: the key columns go to
a spilling DuckDB table (`keys.KeyTable`) and are checked once at the end. A mean is the count-weighted mean of the chunks' means, which
may differ from the whole batch's in the last bits. `tests/unit/test_chunked_validation.py` holds the
combination to the whole-batch evaluation on the ingest corpus.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines.validation.checks import PARTIAL_UNEXPECTED, CheckResult, evaluate, map_result, mostly_met
from pipelines.validation.keys import KeyTable

_KEYED = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
_MEAN = "expect_column_mean_to_be_between"


def _key_columns(expectation: Any) -> list[str]:
    return [expectation.column] if hasattr(expectation, "column") else list(expectation.column_list)


class ChunkedChecks:
    """Feed it each chunk of a batch with `add`; `results` is the suite's outcome on the whole batch."""

    def __init__(self, expectations: list[Any]) -> None:
        self.expectations = expectations
        self._row_level = [e for e in expectations if e.expectation_type not in _KEYED]
        self._parts: list[list[CheckResult]] = []  # per chunk, the row-level results
        self._means: list[dict[int, tuple[float, int]]] = []  # per chunk: expectation -> (mean, count)
        self._first_keys: pd.DataFrame | None = None  # one chunk: checked in memory, exactly as `evaluate`
        self._table: KeyTable | None = None  # more: in a spilling DuckDB table
        self._in_memory: list[pd.DataFrame] | None = None  # keys DuckDB cannot type (mixed values)
        self._key_names = list(
            dict.fromkeys(c for e in expectations if e.expectation_type in _KEYED for c in _key_columns(e))
        )

    def add(self, frame: pd.DataFrame) -> None:
        """Evaluate one chunk (chunks must come in row order)."""
        self._parts.append(evaluate(frame, self._row_level))
        means: dict[int, tuple[float, int]] = {}
        for index, expectation in enumerate(self._row_level):
            if expectation.expectation_type == _MEAN and expectation.column in frame.columns:
                column = frame[expectation.column]
                means[index] = (
                    self._parts[-1][index].result.get("observed_value", float("nan")),
                    int(column.count()),
                )
        self._means.append(means)
        self._add_keys(frame[[c for c in self._key_names if c in frame.columns]])

    def _add_keys(self, keys: pd.DataFrame) -> None:
        if len(self._parts) == 1:
            self._first_keys = keys.copy()
            return
        if self._in_memory is not None:
            self._in_memory.append(keys.copy())
            return
        try:
            if self._table is None:
                self._table = KeyTable(list(keys.columns))
                assert self._first_keys is not None
                self._table.add(self._first_keys)
                self._first_keys = None
            self._table.add(keys)
        except Exception:  # values Arrow cannot type as one column: check this batch in memory
            held = [self._table.frame()] if self._table is not None and self._table.rows else []
            held += [self._first_keys] if self._first_keys is not None else []
            if self._table is not None:
                self._table.close()
            self._table, self._first_keys = None, None
            self._in_memory = [*held, keys.copy()]

    def results(self) -> list[CheckResult]:
        """Every expectation's result on the whole batch, in the suite's order."""
        if not self._parts:
            raise ValueError("no chunk was evaluated")
        combined = iter([self._combine(i, e) for i, e in enumerate(self._row_level)])
        try:
            return [
                self._keyed(e) if e.expectation_type in _KEYED else next(combined) for e in self.expectations
            ]
        finally:
            if self._table is not None:
                self._table.close()
                self._table = None

    def _keyed(self, expectation: Any) -> CheckResult:
        if self._table is not None:
            return self._table.unique(expectation)
        held = self._in_memory if self._in_memory is not None else [self._first_keys]
        keys = pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]
        assert keys is not None
        return evaluate(keys, [expectation])[0]

    def _combine(self, index: int, expectation: Any) -> CheckResult:
        parts = [chunk[index] for chunk in self._parts]
        if len(parts) == 1:
            return parts[0]
        failed = next((p for p in parts if p.error), None)
        if failed is not None:
            return CheckResult(False, {}, failed.error)
        kind = expectation.expectation_type
        if kind == "expect_table_row_count_to_be_between":
            rows = sum(p.result["observed_value"] for p in parts)
            low, high = expectation.min_value, expectation.max_value
            return CheckResult(
                (low is None or rows >= low) and (high is None or rows <= high), {"observed_value": rows}
            )
        if kind == "expect_column_to_exist":
            return parts[0]
        if kind == _MEAN:
            return self._combined_mean(index, expectation)
        if any("observed_value" in p.result for p in parts):  # a type list checked on the dtype
            return next((p for p in parts if not p.success), parts[0])
        return _combined_map(expectation, parts)

    def _combined_mean(self, index: int, expectation: Any) -> CheckResult:
        weighted = [self._means[chunk].get(index) for chunk in range(len(self._parts))]
        counted = [(mean, n) for mean, n in (w for w in weighted if w is not None) if n]
        total = sum(n for _, n in counted)
        mean = sum(m * n for m, n in counted) / total if total else float("nan")
        low, high = expectation.min_value, expectation.max_value
        success = bool((low is None or mean >= low) and (high is None or mean <= high))
        return CheckResult(success, {"observed_value": mean})


def _combined_map(expectation: Any, parts: list[CheckResult]) -> CheckResult:
    """A map expectation's summary from its chunks' summaries."""
    results = [p.result for p in parts]
    elements = sum(r["element_count"] for r in results)
    unexpected = sum(r["unexpected_count"] for r in results)
    examples = [v for r in results for v in r["partial_unexpected_list"]][:PARTIAL_UNEXPECTED]
    sample = pd.Series(examples, dtype=object)
    if expectation.expectation_type == "expect_column_values_to_not_be_null":
        success = not elements or (elements - unexpected) / elements >= expectation.mostly
        return CheckResult(success, map_result(elements, None, sample, unexpected))
    present = elements - sum(r["missing_count"] for r in results)
    success = mostly_met(present, unexpected, getattr(expectation, "mostly", None))
    return CheckResult(success, map_result(elements, present, sample, unexpected))
