"""The suite evaluated chunk by chunk gives the whole batch's results: every bad batch of the ingest
corpus, cut into uneven chunks (a duplicate key split across two chunks included)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.datagen.examples import generate_example
from pipelines.validation.checks import evaluate
from pipelines.validation.chunked import ChunkedChecks
from pipelines.validation.suite import expectations_for
from tests.faults.test_ingest_corpus import CORPUS

CUTS = (0, 1, 317, 318, 900, 1_433)  # an empty chunk, one-row chunks, uneven sizes


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return isinstance(value, list) and len(value) == len(expected) and all(map(_same, value, expected))
    if isinstance(expected, dict):
        return (
            isinstance(value, dict)
            and value.keys() == expected.keys()
            and all(_same(value[k], expected[k]) for k in expected)
        )
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return value is None or (isinstance(value, float) and np.isnan(value))
    if isinstance(expected, float) and isinstance(value, float):
        return bool(np.isclose(value, expected, rtol=1e-12))
    return bool(value == expected)


def _chunked(frame: pd.DataFrame, expectations: list[Any]) -> list[Any]:
    checks = ChunkedChecks(expectations)
    bounds = [*(c for c in CUTS if c < len(frame)), len(frame)]
    for start, stop in itertools.pairwise(bounds):
        checks.add(frame.iloc[start:stop])
    return checks.results()


@pytest.fixture(scope="module")
def clean(usecase) -> pd.DataFrame:
    return generate_example(usecase, 2_000, 11)


@pytest.mark.parametrize("case", ["clean", *sorted(CORPUS)])
def test_chunked_results_are_the_whole_batchs(case: str, usecase, clean: pd.DataFrame) -> None:
    frame = clean if case == "clean" else CORPUS[case][0](clean)
    expectations = expectations_for(usecase.dataset)
    whole, chunked = evaluate(frame, expectations), _chunked(frame, expectations)
    for expectation, want, got in zip(expectations, whole, chunked, strict=True):
        label = f"{case}: {expectation.expectation_type}({getattr(expectation, 'column', '')})"
        assert got.success == want.success, label
        assert bool(got.error) == bool(want.error), label
        assert _same(got.result, want.result), f"{label}: {got.result} vs {want.result}"


def test_a_key_repeated_across_chunks_is_a_duplicate(usecase, clean: pd.DataFrame) -> None:
    key = usecase.dataset.primary_key[0]
    frame = clean.copy()
    frame.loc[frame.index[1_500], key] = frame.loc[frame.index[10], key]  # chunks 3 and 5
    expectations = expectations_for(usecase.dataset)
    unique = next(i for i, e in enumerate(expectations) if "unique" in e.expectation_type)
    got = _chunked(frame, expectations)[unique]
    assert not got.success and got.result["unexpected_count"] == 2


def test_keys_of_mixed_types_are_checked_in_memory_with_the_same_result(usecase, clean: pd.DataFrame) -> None:
    key = usecase.dataset.primary_key[0]
    frame = clean.astype({key: object})
    frame.loc[frame.index[1_000:1_010], key] = list(range(10))  # numbers among text: Arrow cannot type it
    frame.loc[frame.index[1_500], key] = frame.loc[frame.index[5], key]
    expectations = expectations_for(usecase.dataset)
    whole, chunked = evaluate(frame, expectations), _chunked(frame, expectations)
    unique = next(i for i, e in enumerate(expectations) if "unique" in e.expectation_type)
    assert not chunked[unique].success and _same(chunked[unique].result, whole[unique].result)


def test_a_compound_key_repeated_across_chunks_is_found_with_missing_values_equal(
    usecase, clean: pd.DataFrame
) -> None:
    from pipelines.usecase.spec import DatasetSpec

    spec = DatasetSpec.model_validate(
        {**usecase.dataset.model_dump(), "primary_key": ["customer_id", "event_time"]}
    )
    frame = clean.copy()
    frame.loc[frame.index[[3, 1_200]], ["customer_id", "event_time"]] = [
        "c-x",
        frame.loc[frame.index[3], "event_time"],
    ]
    frame.loc[frame.index[[7, 1_300]], "customer_id"] = None  # (missing, t) twice: the same key
    frame.loc[frame.index[1_300], "event_time"] = frame.loc[frame.index[7], "event_time"]
    expectations = expectations_for(spec)
    whole, chunked = evaluate(frame, expectations), _chunked(frame, expectations)
    compound = next(i for i, e in enumerate(expectations) if "compound" in e.expectation_type)
    assert whole[compound].result["unexpected_count"] >= 4
    assert chunked[compound].success == whole[compound].success
    assert _same(chunked[compound].result, whole[compound].result), (
        chunked[compound].result,
        whole[compound].result,
    )
