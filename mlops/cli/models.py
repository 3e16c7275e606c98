"""`mlops models`: what the registry holds."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from mlops.cli.errors import friendly_errors

app = typer.Typer(
    help="The model registry: versions, approval status, champion and lineage.", no_args_is_help=True
)
console = Console(soft_wrap=True)
wide = Console(width=max(console.width, 150))


@app.command("list")
def list_models(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    model: str | None = typer.Option(None, help="Only this model."),
) -> None:
    """List registered versions with status, test metric, lineage and which one is the champion."""
    from mlops.contract_source import load_platform_contract
    from mlops.settings import load_settings
    from pipelines.platform import registry_for

    with friendly_errors():  # reads the registry only: no orchestrator, torch or lake is started
        registry = registry_for(load_platform_contract(load_settings(env)))
        versions = registry.versions(model)
        champions = {name: registry.champion(name) for name in {v.model_name for v in versions}}
    if not versions:
        console.print(f"no models registered in {env} yet: run `mlops run training --env {env}`")
        return
    table = Table(
        "model", "version", "status", "champion", "test metric", "run", "data snapshots", "commit", "created"
    )
    for v in versions:
        champion = champions.get(v.model_name)
        is_champion = champion is not None and champion.version == v.version
        snapshots = ", ".join(f"{t.split('.')[0]}@{s}" for t, s in v.lineage.get("tables", {}).items())
        table.add_row(
            v.model_name,
            str(v.version),
            v.status.value,
            "★" if is_champion else "",
            _headline(v.metrics),
            v.run_key,
            snapshots,
            str(v.lineage.get("git_commit", ""))[:10],
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    wide.print(table)


def _headline(metrics: dict[str, float]) -> str:
    """The task's selection metric: AUC for a binary model, R^2 for a regression."""
    for name in ("auc", "r2"):
        if name in metrics:
            return f"{name} {metrics[name]:.4f}"
    return ""
