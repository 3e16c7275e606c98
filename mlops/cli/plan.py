"""`mlops plan`: the offline plan of an AWS environment (the real Pulumi program under mocks)."""

from __future__ import annotations

import json
import time
from collections import Counter

import typer
from rich.console import Console
from rich.table import Table

from mlops.cli.errors import friendly_errors
from mlops.paths import environments_dir
from policies.model import Violation

console = Console(soft_wrap=True)
wide = Console(width=max(console.width, 160))


def _plan(env: str):  # type: ignore[no-untyped-def]
    from infra.offline import plan_environment

    return plan_environment(environments_dir(), env)


def _normalise(name: str, env: str) -> str:
    return name.replace(f"mlops-{env}-", "mlops-<env>-")


def _short(type_token: str) -> str:
    """`aws:s3/bucket:Bucket` → `s3/bucket`; a component `mlops:platform:Keys` → `component Keys`."""
    package, module, name = type_token.split(":")
    return f"{module}" if package in ("aws", "kubernetes") else f"component {name}"


def _print_diff(left: str, right: str) -> None:
    from infra.inventory import key_settings

    plans = {env: _plan(env) for env in (left, right)}
    rows = {
        env: {
            _normalise(r.name, env): (_short(r.type), _normalise(key_settings(r), env))
            for r in plan.resources
            if not r.is_component
        }
        for env, plan in plans.items()
    }
    table = Table("resource", "type", left, right, title=f"{left} vs {right}: what differs")
    for name in sorted(set(rows[left]) | set(rows[right])):
        a, b = rows[left].get(name), rows[right].get(name)
        if a == b:
            continue
        kind = (a or b)[0]  # type: ignore[index]
        table.add_row(name, kind, a[1] or "present" if a else "—", b[1] or "present" if b else "—")
    wide.print(table)
    counts = {
        env: Counter(_short(r.type) for r in plan.resources if not r.is_component)
        for env, plan in plans.items()
    }
    summary = Table("type", left, right, title="resource counts that differ")
    for kind in sorted(set(counts[left]) | set(counts[right])):
        if counts[left][kind] != counts[right][kind]:
            summary.add_row(kind, str(counts[left][kind]), str(counts[right][kind]))
    wide.print(summary)
    console.print(f"{left}: {len(rows[left])} resources, {right}: {len(rows[right])} resources")


def plan(
    env: str = typer.Option("dev", "--env", "-e", help="AWS environment (environments/Pulumi.<env>.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the inventory and the contract as JSON."),
    diff: tuple[str, str] | None = typer.Option(
        None, "--diff", help="Two environments to compare, e.g. --diff dev prod."
    ),
    policies: bool = typer.Option(
        False, "--policies", help="Also run the policy pack at this environment's levels."
    ),
    fidelity: bool = typer.Option(
        True,
        "--fidelity/--no-fidelity",
        help="Check the plan against AWS's API models, IAM's reference, the chart record, support calendars "
        "and the release workflow's reachability (on by default).",
    ),
) -> None:
    """Run the infrastructure program offline (Pulumi mocks, no cloud) and list what it would create.

    With --policies the policy pack runs over the plan at the levels of
    policies/enforcement/<env>.json; violations are printed by level and a mandatory one exits 1.
    """
    from infra.config import StackConfigError
    from infra.inventory import evaluate_plan, key_settings
    from policies.enforcement import EnforcementError

    started = time.perf_counter()
    with friendly_errors(extra=(StackConfigError, EnforcementError)):
        if diff:
            _print_diff(*diff)
            return
        result = _plan(env)
        violations = evaluate_plan(result, env) if policies else []
        reports = _fidelity(env, result) if fidelity else []
    if as_json:
        payload = {
            "environment": env,
            "resources": [{"type": r.type, "name": r.name, "inputs": r.inputs} for r in result.resources],
            "outputs": result.outputs,
            "violations": [v.__dict__ for v in violations] if policies else None,
            "fidelity": [
                {"check": r.check, "summary": r.summary(), "findings": [f.__dict__ for f in r.findings]}
                for r in reports
            ],
        }
        print(json.dumps(payload, indent=2, default=str))
    else:
        table = Table("type", "name", "key settings", title=f"offline plan of {env}")
        for r in result.resources:
            table.add_row(_short(r.type), r.name, key_settings(r), style="bold" if r.is_component else None)
        wide.print(table)
        counts = Counter(r.is_component for r in result.resources)
        console.print(
            f"{counts[False]} resources in {counts[True]} components, planned in {time.perf_counter() - started:.1f} s; "
            f"contract → SSM {result.outputs.get('platformContract', {}).get('environment') and f'/mlops/{env}/platform-contract'}"
        )
        if policies:
            _print_violations(env, violations)
        _print_fidelity(reports)
    if any(v.level == "mandatory" for v in violations) or any(r.findings for r in reports):
        raise typer.Exit(code=1)


def _fidelity(env: str, result):  # type: ignore[no-untyped-def]
    from infra.fidelity.run import run_fidelity
    from mlops.paths import PACKAGE_ROOT

    return run_fidelity(
        environments_dir(), PACKAGE_ROOT / ".github" / "workflows" / "release.yml", env, result
    )


def _print_fidelity(reports) -> None:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    for report in reports:
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{escape(report.summary())}[/]", highlight=False)
        for finding in report.findings:
            console.print(f"    - {escape(str(finding))}", highlight=False)


def _print_violations(env: str, violations: list[Violation]) -> None:
    from policies.rules import ALL_RULES

    console.print(f"policy pack: {len(ALL_RULES)} rules at the levels of policies/enforcement/{env}.json")
    for level in ("mandatory", "advisory"):
        found = [v for v in violations if v.level == level]
        colour = "red" if level == "mandatory" and found else "yellow" if found else "green"
        console.print(f"  [{colour}]{level}: {len(found)} violation(s)[/]")
        for v in found:
            console.print(f"    - {v.rule}: {v.resource}: {v.message}", highlight=False)
