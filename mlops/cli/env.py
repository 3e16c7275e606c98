"""`mlops env`: bring an environment up and show its platform contract."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

app = typer.Typer(
    help="Environments: bring the local one up, show any one's platform contract.", no_args_is_help=True
)
console = Console(soft_wrap=True)
EnvOption = typer.Option("local", "--env", "-e", help="Environment name (a file in environments/).")


@app.command("up")
def up(
    env: str = EnvOption,
    server: bool = typer.Option(
        False, "--server", help="Also start a Prefect server on 127.0.0.1 and a process worker."
    ),
    port: int = typer.Option(4200, help="Port of the Prefect server (with --server)."),
) -> None:
    """Create the local platform (lake, catalog, registry, stores) and write its contract. Idempotent."""
    from mlops.bootstrap import bring_up_local
    from mlops.local_orchestrator import OrchestratorError, start
    from mlops.settings import load_settings

    with friendly_errors(extra=(OrchestratorError,)):
        settings = load_settings(env)
        result = bring_up_local(settings)
        orchestrator = start(settings, port) if server else None
    state = "written" if result.changed else "unchanged"
    console.print(f"environment [bold]{env}[/] is up; contract {state}: {result.contract_path}")
    for directory in result.created_dirs:
        console.print(f"  created {directory}")
    if orchestrator is not None:
        console.print(
            f"Prefect server {orchestrator.api_url} (pid {orchestrator.server_pid}), "
            f"worker on pool {orchestrator.work_pool} (pid {orchestrator.worker_pid}); stop them with `mlops env down`"
        )


@app.command("down")
def down(env: str = EnvOption) -> None:
    """Stop the Prefect server and worker that `mlops env up --server` started (data is kept)."""
    from mlops.local_orchestrator import stop
    from mlops.settings import load_settings

    with friendly_errors():
        stopped = stop(load_settings(env))
    console.print(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")


@app.command("show")
def show(env: str = EnvOption) -> None:
    """Print an environment's platform contract (local file, or SSM parameter in AWS)."""
    from mlops.contract_source import load_platform_contract
    from mlops.settings import load_settings

    with friendly_errors():
        contract = load_platform_contract(load_settings(env))
    console.print_json(json.dumps(contract.model_dump(mode="json")))
