"""A batch's validation page: Great Expectations' result objects and renderer, fed the exact results."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

from pipelines.validation.checks import CheckResult

logging.getLogger("great_expectations").setLevel(logging.WARNING)


def render_validation_page(
    suite_name: str, batch_id: str, expectations: list[Any], checks: list[CheckResult]
) -> str:
    """The HTML page GE's data docs show for one validation run, from results computed elsewhere."""
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    results = [
        ExpectationValidationResult(
            success=check.success,
            expectation_config=expectation.configuration,
            result=check.result,
            exception_info={
                "raised_exception": bool(check.error),
                "exception_message": check.error or None,
                "exception_traceback": check.error or None,
            },
        )
        for expectation, check in zip(expectations, checks, strict=True)
    ]
    passed = sum(check.success for check in checks)
    validated_at = datetime.now(UTC)
    suite_result = ExpectationSuiteValidationResult(
        success=passed == len(checks),
        results=results,
        suite_name=suite_name,
        statistics={
            "evaluated_expectations": len(checks),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(checks) - passed,
            "success_percent": 100.0 * passed / len(checks) if checks else None,
        },
        meta={
            "run_id": {"run_name": batch_id, "run_time": validated_at.isoformat()},
            "validation_time": validated_at.strftime("%Y%m%dT%H%M%S.%fZ"),
            "batch_spec": {},
            "active_batch_definition": {
                "datasource_name": "lake",
                "data_asset_name": suite_name,
                "batch_definition_name": batch_id,
                "batch_identifiers": {"batch_id": batch_id},
            },
        },
        batch_id=batch_id,
    )
    document = ValidationResultsPageRenderer().render(suite_result)
    return str(_page_view().render(document))


@functools.cache
def _page_view() -> Any:
    """One page view per process: each view compiles its own Jinja templates on first use (0.18 s,
    paid by every ingest while a view was made per page); rendering keeps no state in the view."""
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()
