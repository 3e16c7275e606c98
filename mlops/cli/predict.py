"""`mlops predict`: score a lake snapshot with a registered model (the batch-inference flow)."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors, prepare_flows

console = Console(soft_wrap=True)


def _version(text: str) -> int | None:
    if text == "champion":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise typer.BadParameter(f"expected a version number (1, 2, ...) or 'champion', got {text!r}")


def predict(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    model: str | None = typer.Option(None, help="Registered model (default: the environment's model)."),
    version: str = typer.Option("champion", help="Version number, or 'champion' (the latest approved)."),
    table: str | None = typer.Option(
        None, help="Lake table to score, namespace.name (default: pipeline.batch_inference.table or curated)."
    ),
    snapshot: int | None = typer.Option(None, help="Snapshot id of the table (default: its current one)."),
) -> None:
    """Batch inference: score a table snapshot with point-in-time features into predictions.<model>
    (once per model version and input snapshot: a rerun writes nothing new)."""
    chosen = _version(version)
    with friendly_errors():
        prepare_flows(env)
        from pipelines.flows.batch_inference import batch_inference_flow

        result = batch_inference_flow(env=env, model=model, version=chosen, table=table, snapshot=snapshot)
    state = "written" if result["written"] else "already there, nothing written"
    console.print(
        f"{result['model_name']} v{result['model_version']} scored {result['input_table']} "
        f"snapshot {result['input_snapshot_id']}: {result['rows']:,} predictions in "
        f"{result['output_table']} snapshot {result['snapshot_id']} ({state})",
        highlight=False,
    )
