"""Every fidelity check over one environment's plan, as the release workflow would apply it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from infra.config import parse_stack_config
from infra.fidelity.api_models import check_api_models
from infra.fidelity.calendar import check_calendar
from infra.fidelity.findings import CheckReport
from infra.fidelity.helm import check_helm
from infra.fidelity.iam import check_iam
from infra.fidelity.reachability import EXAMPLE_RUNNER_CIDR, check_reachability
from infra.offline import Plan, read_stack_config, run_offline


def plan_as_released(environments: Path, env: str, runner_cidr: str = EXAMPLE_RUNNER_CIDR) -> Plan:
    """The plan of `env` with the release runner's address set, as `pulumi up` in the workflow applies it."""
    config, region = read_stack_config(environments, env)
    payload = config.model_dump()
    payload["orchestrator"] = {**payload["orchestrator"], "ci_runner_cidr": runner_cidr}
    return run_offline(parse_stack_config(payload, f"{environments / f'Pulumi.{env}.yaml'}"), region)


def check_plan(plan: Plan, today: date | None = None) -> list[CheckReport]:
    """The checks that read the plan alone: AWS API models, IAM, Helm pins, support calendars."""
    return [check_api_models(plan), check_iam(plan), check_helm(plan), check_calendar(plan, today)]


def run_fidelity(
    environments: Path, workflow: Path, env: str, plan: Plan | None = None, today: date | None = None
) -> list[CheckReport]:
    """All checks for `env`: the plan's (`plan`, or the plan as released), and the release workflow's
    reachability against the plan as released."""
    released: list[Plan] = []

    def as_released(cidr: str) -> Plan:
        if not released:
            released.append(plan_as_released(environments, env, cidr))
        return released[0]

    reports = check_plan(plan or as_released(EXAMPLE_RUNNER_CIDR), today)
    if workflow.exists():
        reports.append(check_reachability(yaml.safe_load(workflow.read_text()), env, as_released))
    return reports
