"""Runs a dataset's expectation suite on a batch and renders its Great Expectations data docs page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipelines.ports import ArtifactStore
from pipelines.usecase import DatasetSpec
from pipelines.validation.checks import CheckResult, evaluate
from pipelines.validation.docs import render_validation_page
from pipelines.validation.suite import expectations_for


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


def _detail(check: CheckResult) -> str:
    if check.error:
        return "could not be evaluated: " + check.error.splitlines()[0]
    payload = check.result
    if payload.get("unexpected_count") is not None:
        part = f"{payload['unexpected_count']} unexpected of {payload.get('element_count', '?')} rows"
        sample = payload.get("partial_unexpected_list") or []
        return part + (f", e.g. {sample[:3]}" if sample else "")
    return f"observed {payload.get('observed_value')!r}"


def validate_batch(
    frame: pd.DataFrame, spec: DatasetSpec, batch_id: str, reports: ArtifactStore
) -> ValidationOutcome:
    """Validate `frame` against the spec's suite; the data docs page is stored under validation/<batch_id>/.

    The verdict comes from one exact, vectorised pass (`checks.evaluate`); Great Expectations turns
    the same results into its result objects and renders its validation page from them.
    """
    expectations = expectations_for(spec)
    return report_outcome(spec, batch_id, expectations, evaluate(frame, expectations), reports)


def report_outcome(
    spec: DatasetSpec,
    batch_id: str,
    expectations: list[Any],
    checks: list[CheckResult],
    reports: ArtifactStore,
) -> ValidationOutcome:
    """The verdict of the suite's results, with its data docs page stored under validation/<batch_id>/."""
    failures = [
        FailedExpectation(e.expectation_type, getattr(e, "column", None), _detail(c))
        for e, c in zip(expectations, checks, strict=True)
        if not c.success
    ]
    page = render_validation_page(spec.name, batch_id, expectations, checks)
    report_uri = reports.put_bytes(f"validation/{batch_id}/index.html", page.encode())
    return ValidationOutcome(
        success=not failures, evaluated=len(checks), failures=failures, report_uri=report_uri
    )
