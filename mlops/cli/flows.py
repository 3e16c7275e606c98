"""`mlops flows deploy|run`: Prefect deployments of the pipelines (declared in prefect.yaml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

app = typer.Typer(
    help="Prefect deployments: register them, run them and follow the run.", no_args_is_help=True
)
console = Console(soft_wrap=True)
FLOWS = ("training", "deployment", "monitoring", "quality", "batch-inference")


def _api_env(env: str) -> tuple[dict[str, str], bool]:
    """The environment for Prefect calls (the local server when one runs for a local environment),
    and whether the environment is local."""
    from mlops.local_orchestrator import running
    from mlops.paths import IMAGE_PROJECT_ROOT, project_root
    from mlops.settings import LocalPlatformSettings, load_settings

    settings = load_settings(env)
    variables = {**os.environ, "MLOPS_PROJECT_ROOT": str(project_root())}
    local = isinstance(settings.platform, LocalPlatformSettings)
    if local:
        state = running(settings)
        if state is None:
            raise typer.BadParameter(
                f"no Prefect server runs for {env}: start one with `mlops env up --env {env} --server`"
            )
        variables["PREFECT_API_URL"] = state.api_url
    elif "PREFECT_API_URL" not in os.environ:
        raise typer.BadParameter(
            "set PREFECT_API_URL (and PREFECT_API_KEY for Prefect Cloud) to the environment's orchestrator"
        )
    else:
        variables["MLOPS_PROJECT_ROOT"] = IMAGE_PROJECT_ROOT  # flow runs start in the platform image
    return variables, local


def _configure_kubernetes_pool(env: str, prefect: str, variables: dict[str, str]) -> None:
    """The pool infra/ provisions gets the job template that can request GPUs and runs the platform image."""
    from mlops.contract_source import load_platform_contract
    from mlops.settings import load_settings
    from mlops.work_pool import kubernetes_job_template

    with friendly_errors():
        template = kubernetes_job_template(load_platform_contract(load_settings(env)))
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="job-template-") as file:
        json.dump(template, file)
        file.flush()
        subprocess.run(
            [
                prefect,
                "work-pool",
                "create",
                f"{env}-kubernetes",
                "--type",
                "kubernetes",
                "--base-job-template",
                file.name,
                "--overwrite",
            ],
            env=variables,
            capture_output=True,
            check=True,
            timeout=120,
        )


@app.command("deploy")
def deploy(env: str = typer.Option("local", "--env", "-e", help="Environment name.")) -> None:
    """Register the environment's deployments from prefect.yaml."""
    from mlops.paths import project_root

    with friendly_errors():
        variables, local = _api_env(env)
    names = [f"{flow}-{env}" for flow in FLOWS]
    prefect = str(Path(sys.executable).parent / "prefect")
    if not local:
        _configure_kubernetes_pool(env, prefect, variables)
    command = [prefect, "--no-prompt", "deploy"]
    for name in names:
        command += ["-n", name]
    result = subprocess.run(
        command, cwd=project_root(), env=variables, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        console.print(
            f"[red]error:[/] prefect deploy failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
        raise typer.Exit(code=1)
    console.print(f"registered {', '.join(names)}")


@app.command("run")
def run(
    flow: str = typer.Argument(..., help="training, deployment or monitoring."),
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    timeout: int = typer.Option(1800, help="Seconds to follow the run."),
) -> None:
    """Trigger a deployment run, follow it to completion and exit non-zero if it fails."""
    if flow not in FLOWS:
        raise typer.BadParameter(f"unknown flow {flow!r}; choose from {', '.join(FLOWS)}")
    with friendly_errors():
        variables, _ = _api_env(env)
    os.environ.update({k: v for k, v in variables.items() if k in ("PREFECT_API_URL", "MLOPS_PROJECT_ROOT")})
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    started = time.monotonic()
    flow_run = cast(
        FlowRun, run_deployment(f"{flow}/{flow}-{env}", timeout=0)
    )  # sync call outside an event loop
    console.print(f"flow run {flow_run.name} ({flow_run.id}) scheduled on {flow}-{env}")
    last = None
    with get_client(sync_client=True) as client:
        while time.monotonic() - started < timeout:
            state = client.read_flow_run(flow_run.id).state
            if state is not None and state.name != last:
                last = state.name
                console.print(f"  {time.monotonic() - started:5.0f} s  {state.name}")
            if state is not None and state.is_final():
                break
            time.sleep(1)
    if state is None or not state.is_completed():
        console.print(
            f"[red]error:[/] the {flow} run ended {last or 'without a state'}: {state.message if state else ''}"
        )
        raise typer.Exit(code=1)
