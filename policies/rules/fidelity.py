"""The fidelity checks of `infra/fidelity` as one stack policy, so that `pulumi preview` and `pulumi up`
with the pack hold the engine's real inputs (not only the offline plan's) against botocore's models,
IAM's service reference, the chart record and the support calendars."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject


def aws_fidelity(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    from infra.fidelity.run import check_plan
    from infra.offline import Plan, PlannedResource

    plan = Plan("pack", [PlannedResource(s.type, s.name, dict(s.props)) for s in subjects])
    for report in check_plan(plan):
        for finding in report.findings:
            yield finding.resource, f"{report.check}: {finding.input}: {finding.message}"


RULES = (
    Rule(
        "aws-fidelity",
        "Inputs pass botocore's API models, IAM's service reference, the pinned chart record and the support calendars.",
        "botocore service models, IAM service reference",
        stack_check=aws_fidelity,
    ),
)
