"""The gate's exact evaluation agrees with Great Expectations' own on good and bad batches.

The gate computes each expectation's result in one vectorised pass (`pipelines/validation/checks.py`);
Great Expectations is the reference: for every batch of a corpus (every bad batch of the ingest
corpus, empty and all-null batches, statistics out of bounds, every example use case), each
expectation's success, counts, observed value and examples must be GE's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.paths import PACKAGE_ROOT
from pipelines.datagen.examples import generate_example
from pipelines.lake.batches import read_batch
from pipelines.usecase import DatasetSpec, load_usecase
from pipelines.validation.checks import evaluate
from pipelines.validation.reference import great_expectations_results, raised
from pipelines.validation.suite import expectations_for
from tests.faults.test_ingest_corpus import CORPUS

_COMPARED = ("element_count", "unexpected_count", "missing_count", "observed_value")


def _same(value: Any, expected: Any) -> bool:
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return value is None or (isinstance(value, float) and np.isnan(value))  # GE reports NaN as None
    if isinstance(expected, float) and isinstance(value, float):
        return bool(np.isclose(value, expected, rtol=1e-12))
    return bool(value == expected)


def _assert_parity(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    expectations = expectations_for(spec)
    ours = evaluate(frame, expectations)
    reference = great_expectations_results(frame, expectations)
    assert len(ours) == len(reference)
    for expectation, mine, theirs in zip(expectations, ours, reference, strict=True):
        label = f"{expectation.expectation_type}({getattr(expectation, 'column', '')})"
        error = raised(theirs.exception_info)
        assert bool(mine.error) == error, f"{label}: error {mine.error!r} vs GE {theirs.exception_info}"
        assert mine.success == theirs.success, f"{label}: success {mine.success} vs GE {theirs.success}"
        if error:
            continue
        expected = theirs.result or {}
        for key in _COMPARED:
            if key in expected:
                assert _same(mine.result.get(key), expected[key]), (
                    f"{label}: {key} {mine.result.get(key)!r} vs {expected[key]!r}"
                )
        if "partial_unexpected_list" in expected:
            mine_examples, their_examples = (
                mine.result["partial_unexpected_list"],
                expected["partial_unexpected_list"],
            )
            assert len(mine_examples) == len(their_examples), label
            assert all(map(_same, mine_examples, their_examples)), (
                f"{label}: {mine_examples} vs {their_examples}"
            )


@pytest.fixture(scope="module")
def clean(usecase) -> pd.DataFrame:
    return generate_example(usecase, 2_000, 11)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_bad_batch_of_the_corpus(case: str, usecase, clean: pd.DataFrame) -> None:
    change, _ = CORPUS[case]
    _assert_parity(change(clean), usecase.dataset)


def test_a_clean_batch_read_back_from_csv(usecase, clean: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    clean.to_csv(path, index=False)
    _assert_parity(read_batch(path, usecase.dataset).frame, usecase.dataset)


def test_text_in_numbers_read_back_from_csv(usecase, clean: pd.DataFrame, tmp_path: Path) -> None:
    frame = clean.astype({"amount": object, "session_minutes": object})
    frame.loc[frame.index[:4], "amount"] = "n/a"
    frame.loc[frame.index[5:9], "session_minutes"] = None
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    _assert_parity(read_batch(path, usecase.dataset).frame, usecase.dataset)


def test_empty_and_all_null_batches(usecase, clean: pd.DataFrame) -> None:
    _assert_parity(clean.head(0), usecase.dataset)
    nulls = clean.head(50).copy()
    for name in ("amount", "country", "session_minutes"):
        nulls[name] = None
    _assert_parity(nulls, usecase.dataset)


def test_statistics_out_of_bounds(usecase, clean: pd.DataFrame) -> None:
    shifted = clean.copy()
    for name in usecase.dataset.statistics.mean_between:
        shifted[name] = shifted[name] * 1_000 + 10**6
    _assert_parity(shifted, usecase.dataset)


@pytest.mark.parametrize("name", ["store_demand", "firm_distress"])
def test_other_use_cases_clean_and_damaged(name: str) -> None:
    other = load_usecase(PACKAGE_ROOT / "usecases" / f"{name}.yaml")
    frame = generate_example(other, 1_500, 3)
    _assert_parity(frame, other.dataset)
    damaged = frame.copy()
    key = other.dataset.primary_key[0]
    damaged.loc[damaged.index[:6], key] = damaged[key].iloc[10]
    numeric = next(n for n, c in other.dataset.columns.items() if c.type == "float" and n in frame)
    damaged.loc[damaged.index[20:25], numeric] = np.nan
    _assert_parity(damaged, other.dataset)
