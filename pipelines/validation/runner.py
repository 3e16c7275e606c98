"""Runs a dataset's expectation suite on a batch and renders Great Expectations data docs (HTML)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.ports import ArtifactStore
from pipelines.usecase import DatasetSpec
from pipelines.validation.suite import expectations_for

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    detail: str

    def describe(self) -> str:
        target = f"{self.column}: " if self.column else ""
        return f"{target}{self.expectation} ({self.detail})"


@dataclass(frozen=True)
class ValidationOutcome:
    success: bool
    evaluated: int
    failures: list[FailedExpectation] = field(default_factory=list)
    report_uri: str = ""


def _detail(result: Any) -> str:
    if result.exception_info and result.exception_info.get("raised_exception"):
        return (
            "could not be evaluated: "
            + str(result.exception_info.get("exception_message", "")).splitlines()[0]
        )
    payload = result.result or {}
    if payload.get("unexpected_count") is not None:
        part = f"{payload['unexpected_count']} unexpected of {payload.get('element_count', '?')} rows"
        sample = payload.get("partial_unexpected_list") or []
        return part + (f", e.g. {sample[:3]}" if sample else "")
    observed = payload.get("observed_value")
    if observed is not None and hasattr(observed, "item"):
        observed = observed.item()
    return f"observed {observed!r}"


def validate_batch(
    frame: pd.DataFrame, spec: DatasetSpec, batch_id: str, reports: ArtifactStore
) -> ValidationOutcome:
    """Validate `frame` against the spec's suite; the data docs site is stored under validation/<batch_id>/."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with tempfile.TemporaryDirectory(prefix="gx-") as scratch:
        context = gx.get_context(mode="file", project_root_dir=scratch)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("lake")
        batch_definition = source.add_dataframe_asset(spec.name).add_batch_definition_whole_dataframe("batch")
        suite = context.suites.add(gx.ExpectationSuite(name=spec.name, expectations=expectations_for(spec)))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_definition, suite=suite, name=f"{spec.name}-{batch_id}")
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{spec.name}-gate",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
                result_format="SUMMARY",
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        results = [r for validation in run.run_results.values() for r in validation.results]
        failures = [
            FailedExpectation(
                r.expectation_config.type, r.expectation_config.kwargs.get("column"), _detail(r)
            )
            for r in results
            if r.expectation_config is not None and not r.success
        ]
        site = Path(scratch) / "gx" / "uncommitted" / "data_docs" / "local_site"
        pages = sorted((site / "validations").rglob("*.html"))
        reports.put_tree(f"validation/{batch_id}", site)
        page = pages[0].relative_to(site).as_posix() if pages else "index.html"
        report_uri = reports.uri(f"validation/{batch_id}/{page}")
    return ValidationOutcome(
        success=bool(run.success), evaluated=len(results), failures=failures, report_uri=report_uri
    )
