"""Great Expectations' own pandas engine on a suite: the reference the exact gate is held to.

Not on the ingest path (see `checks.py` for why); the parity tests and `bench/validation_cost.py`
run it to prove the gate gives GE's results and to measure what it saves.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def great_expectations_results(frame: pd.DataFrame, expectations: list[Any]) -> list[Any]:
    """GE's result for each expectation on `frame` (SUMMARY format), in the suite's order."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("reference")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name="reference", expectations=expectations)
    results = batch.validate(suite, result_format="SUMMARY").results
    # GE reports in its own order: match each result to its expectation by configuration.
    by_config = {_identity(r.expectation_config): r for r in results}
    return [by_config[_identity(e.configuration)] for e in expectations]


def _identity(config: Any) -> str:
    named = ("column", "column_list", "min_value", "max_value")
    return f"{config.type}:{[config.kwargs.get(k) for k in named]!r}"


def raised(exception_info: dict[str, Any] | None) -> bool:
    """Whether GE could not evaluate an expectation (its info is flat, or keyed by failed metric)."""
    info = exception_info or {}
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())
