"""`mlops doctor`: preflight of an AWS environment with your credentials, before `pulumi up`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from mlops.cli.errors import friendly_errors

console = Console(soft_wrap=True)
MARKS = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def doctor(env: str = typer.Option(..., "--env", "-e", help="dev, staging or prod.")) -> None:
    """Check identity, region, backend, secrets provider, stack, bucket names, GPU types, vCPU quotas and
    the EKS version, one line each; exits 1 when anything would make `pulumi up` fail."""
    from infra.config import StackConfigError
    from mlops.doctor import run_doctor
    from mlops.paths import environments_dir

    with friendly_errors(extra=(StackConfigError,)):
        verdicts = run_doctor(env, environments_dir())
    for verdict in verdicts:
        console.print(f"{MARKS[verdict.status]} {verdict.check}: {escape(verdict.message)}", highlight=False)
    failed = [v for v in verdicts if v.status == "fail"]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed: fix them before `pulumi up -s {env}`[/]")
        raise typer.Exit(code=1)
