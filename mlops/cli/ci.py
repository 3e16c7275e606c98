"""`mlops ci`: helpers the GitHub workflows call (the logic lives here, tested, not in YAML)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="Helpers for the CI/CD workflows.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def export_to_github_env(variables: dict[str, str], secrets: tuple[str, ...] = ()) -> None:
    """Append `variables` to $GITHUB_ENV for the job's later steps (stdout outside Actions), masking `secrets`."""
    for secret in secrets:
        print(f"::add-mask::{secret}")  # the runner hides these values in every later log line
    lines = "".join(f"{k}={v}\n" for k, v in variables.items())
    target = os.environ.get("GITHUB_ENV")
    if target:
        with Path(target).open("a") as handle:
            handle.write(lines)
    else:
        print(lines, end="")


@app.command("aws-credentials")
def aws_credentials(
    role_arn: str = typer.Option(..., help="The IAM role the workflow assumes."),
    duration: int = typer.Option(
        7200, help="Seconds the credentials last: at least the job's timeout (the role must allow it)."
    ),
    session: str = typer.Option("mlops-ci", help="Role session name."),
) -> None:
    """Exchange GitHub's OIDC token once for AWS session credentials that last the whole job."""
    from mlops.ci import CredentialExchangeFailed, OidcUnavailable, exchange_for_session

    try:
        credentials = exchange_for_session(role_arn, session, duration)
    except (OidcUnavailable, CredentialExchangeFailed) as exc:
        raise _fail(exc) from None
    export_to_github_env(credentials.environment(), credentials.secrets())
    err.print(f"AWS credentials for {role_arn} until {credentials.expiration.isoformat()}", highlight=False)


def _fail(message: object) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False)
    return typer.Exit(code=1)


def _tool(name: str) -> str:
    """A tool installed next to this Python (the workflow puts the Pulumi CLI in .venv/bin), else PATH's."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


@app.command("pulumi-stack")
def pulumi_stack(env: str = typer.Option(..., "--env", "-e", help="dev, staging or prod.")) -> None:
    """Select the environment's stack, creating it on a first run (with the recorded secrets provider)."""
    from mlops.paths import environments_dir
    from mlops.release_runner import ReleasePreflightError, stack_select_command

    stack_file = environments_dir() / f"Pulumi.{env}.yaml"
    if not stack_file.exists():
        raise _fail(f"no stack config {stack_file}")
    try:
        command = stack_select_command(env, stack_file, dict(os.environ))
    except ReleasePreflightError as exc:
        raise _fail(exc) from None
    command[0] = _tool("pulumi")
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise _fail(f"`{' '.join(command)}` exited {result.returncode}")


@app.command("runner-cidr")
def runner_cidr() -> None:
    """Export MLOPS_RUNNER_CIDR: this runner's public address, admitted to the cluster API for the run."""
    from mlops.release_runner import ReleasePreflightError, runner_cidr

    try:
        cidr = runner_cidr()
    except (ReleasePreflightError, OSError) as exc:
        raise _fail(f"cannot learn this runner's public address: {exc}") from None
    export_to_github_env({"MLOPS_RUNNER_CIDR": cidr})


@app.command("prefect-api")
def prefect_api(
    env: str = typer.Option(..., "--env", "-e", help="dev, staging or prod."),
    port: int = typer.Option(4200, help="Local port of the tunnel."),
    wait: float = typer.Option(180, help="Seconds to wait for the API to answer."),
    work_dir: Path = typer.Option(Path(".prefect-tunnel"), help="Where the kubeconfig and the log go."),
) -> None:
    """Export PREFECT_API_URL: the in-cluster server through a port-forward, or Prefect Cloud as configured."""
    from mlops.contract import ContractError
    from mlops.contract_source import load_platform_contract
    from mlops.release_runner import ReleasePreflightError, open_prefect_tunnel
    from mlops.settings import load_settings

    try:
        contract = load_platform_contract(load_settings(env))
    except ContractError as exc:
        raise _fail(exc) from None
    orchestrator = contract.orchestrator
    if not orchestrator.api_url or not orchestrator.cluster_name:
        if not os.environ.get("PREFECT_API_URL"):
            raise _fail(
                f"{env} runs its workers against Prefect Cloud: set PREFECT_API_URL and PREFECT_API_KEY"
            )
        err.print(f"Prefect API of {env}: {os.environ['PREFECT_API_URL']} (from the job's environment)")
        return
    try:
        url, pid = open_prefect_tunnel(
            orchestrator.cluster_name,
            contract.region or "eu-west-1",
            "prefect",
            work_dir.resolve(),
            port,
            wait,
        )
    except (ReleasePreflightError, subprocess.CalledProcessError) as exc:
        raise _fail(f"cannot reach the Prefect server of {env}: {exc}") from None
    export_to_github_env({"PREFECT_API_URL": url, "MLOPS_PREFECT_TUNNEL_PID": str(pid)})
    err.print(f"Prefect API of {env}: {url} (port-forward to the in-cluster server, pid {pid})")


@app.command("verify-charts")
def verify_charts(
    env: str = typer.Option(..., "--env", "-e", help="dev, staging or prod."),
    work_dir: Path = typer.Option(Path(".chart-render"), help="Where the values and manifests go."),
) -> None:
    """Render every Helm release of the plan at its pinned version (helm template) and validate it (kubeconform)."""
    from infra.config import StackConfigError
    from infra.fidelity.helm import kubeconform_command, planned_releases, template_command
    from infra.fidelity.run import plan_as_released
    from mlops.paths import environments_dir

    for tool in ("helm", "kubeconform"):
        if shutil.which(tool) is None:
            raise _fail(f"`{tool}` is not on PATH (the platform action installs it)")
    try:
        plan = plan_as_released(environments_dir(), env)
    except StackConfigError as exc:
        raise _fail(exc) from None
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    work_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for release in planned_releases(plan):
        values = work_dir / f"{release.name}.values.json"
        values.write_text(json.dumps(release.values, indent=2))
        rendered = subprocess.run(
            template_command(release, values), capture_output=True, text=True, check=False
        )
        if rendered.returncode != 0:
            failures.append(
                f"{release.resource}: helm template {release.chart} {release.version}: {_last_line(rendered.stderr)}"
            )
            continue
        (work_dir / f"{release.name}.yaml").write_text(rendered.stdout)
        checked = subprocess.run(
            kubeconform_command(str(cluster.inputs["version"])),
            input=rendered.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            failures.append(f"{release.resource}: kubeconform: {_last_line(checked.stdout + checked.stderr)}")
            continue
        err.print(f"{release.chart} {release.version}: rendered and valid", highlight=False)
    if failures:
        for failure in failures:
            err.print(f"[bold red]error:[/] {escape(failure)}", highlight=False)
        raise typer.Exit(code=1)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
