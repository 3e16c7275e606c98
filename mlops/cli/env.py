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
def up(env: str = EnvOption) -> None:
    """Create the local platform (lake, catalog, registry, stores) and write its contract. Idempotent."""
    from mlops.bootstrap import bring_up_local
    from mlops.settings import load_settings

    with friendly_errors():
        result = bring_up_local(load_settings(env))
    state = "written" if result.changed else "unchanged"
    console.print(f"environment [bold]{env}[/] is up; contract {state}: {result.contract_path}")
    for directory in result.created_dirs:
        console.print(f"  created {directory}")


@app.command("show")
def show(env: str = EnvOption) -> None:
    """Print an environment's platform contract (local file, or SSM parameter in AWS)."""
    from mlops.contract_source import load_platform_contract
    from mlops.settings import load_settings

    with friendly_errors():
        contract = load_platform_contract(load_settings(env))
    console.print_json(json.dumps(contract.model_dump(mode="json")))
