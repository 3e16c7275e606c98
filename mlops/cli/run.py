"""`mlops run` and `mlops demo`: run pipelines on an environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops.cli.errors import friendly_errors, prepare_flows

app = typer.Typer(help="Run a pipeline (as a Prefect flow) on an environment.", no_args_is_help=True)
console = Console(soft_wrap=True)


def print_training_summary(summary: dict[str, Any]) -> None:
    colour = "green" if summary["status"] == "Approved" else "red"
    console.rule(f"[bold]{summary['model_name']} v{summary['version']}: [{colour}]{summary['status']}[/]")
    if summary.get("status_reason"):
        console.print(escape(summary["status_reason"]), highlight=False)
    table = Table("metric", "value", show_edge=False)
    for name, value in summary["metrics"].items():
        table.add_row(escape(name), f"{value:.4f}")
    console.print(table)
    gates = Table("gate", "passed", "observed", "threshold", show_edge=False)
    for gate in summary["gates"]:
        mark = "[green]yes[/]" if gate["passed"] else "[red]no[/]"
        gates.add_row(escape(gate["name"]), mark, f"{gate['observed']:.4f}", f"{gate['threshold']:.4f}")
    console.print(gates)
    console.print(
        f"run {summary['run_key']}: {summary['epochs']} epochs on {summary['device']}", highlight=False
    )
    if summary["resumed_from_epoch"]:
        console.print(f"resumed from the checkpoint after epoch {summary['resumed_from_epoch']}")
    console.print("[bold]reports[/]")
    console.print(f"  evaluation report : {summary['evaluation_report']}", highlight=False)
    console.print(f"  training curves   : {summary['training_curves']}", highlight=False)
    if summary["validation_report"]:
        console.print(f"  data docs         : {summary['validation_report']}", highlight=False)


@app.command("training")
def training(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    source: Path | None = typer.Option(None, help="Ingest this Parquet/CSV batch first."),
    nproc: int | None = typer.Option(
        None, "--nproc", min=1, help="Data-parallel ranks on this machine (gloo on CPU, NCCL on GPUs)."
    ),
) -> None:
    """Run the training pipeline: [ingest →] validate → features → train → evaluate → register."""

    with friendly_errors():
        prepare_flows(env)
        from pipelines.flows.training import training_flow

        summary = training_flow(env=env, source=str(source) if source else None, processes=nproc)
    print_training_summary(summary)


@app.command("sweep")
def sweep(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    trials: int | None = typer.Option(
        None,
        "--trials",
        min=1,
        help="Trial settings per segment (default: the use case's sweep.trials_per_segment); "
        "the sweep trains segments x trials models.",
    ),
) -> None:
    """Run the sweep: a model per segment times a hyperparameter search, in chunks (features → global
    model → trials → results table → winners tested against the global model → report)."""
    with friendly_errors():
        prepare_flows(env)
        from pipelines.flows.sweep import sweep_flow

        summary = sweep_flow(env=env, trials=trials)
    console.rule(f"[bold]sweep {summary['sweep_key']} of {summary['model_name']}")
    table = Table("", "", show_edge=False, show_header=False)
    for name, value in summary.items():
        if name not in ("report", "sweep_key", "model_name"):
            table.add_row(escape(name.replace("_", " ")), escape(str(value)))
    console.print(table)
    console.print(f"  sweep report : {summary['report']}", highlight=False)


def demo(
    env: str = typer.Option("local", "--env", "-e", help="A local environment."),
    rows: int | None = typer.Option(None, help="Demo size (default: pipeline.demo.rows of the environment)."),
) -> None:
    """Quick start: bring the local environment up, generate example data, run the training pipeline,
    and deploy the model if it passes its gates (then `mlops serve` answers on 127.0.0.1:8080)."""
    from mlops.bootstrap import bring_up_local
    from mlops.settings import load_settings
    from pipelines.datagen.examples import generate_example
    from pipelines.usecase import load_usecase

    with friendly_errors():
        settings = load_settings(env)
        up = bring_up_local(settings)
        console.print(f"[bold]1/4[/] environment {env} is up: {up.contract_path}")
        usecase = load_usecase(settings.pipeline.usecase_path())
        size = rows or (usecase.example.rows if usecase.example else None) or settings.pipeline.demo.rows
        seed = settings.pipeline.demo.seed
        path = up.contract_path.parent / "incoming" / f"demo-{usecase.dataset.name}-{size}-{seed}.parquet"
        if not path.exists():
            generate_example(usecase, size, seed).to_parquet(path, index=False)
        console.print(f"[bold]2/4[/] example data: {size:,} {usecase.dataset.name} rows in {path}")
        console.print("[bold]3/4[/] training pipeline (Prefect flow):")
        prepare_flows(env)
        from pipelines.flows.deployment import deployment_flow
        from pipelines.flows.training import training_flow

        summary = training_flow(env=env, source=str(path))
        deployed = None
        if summary["status"] == "Approved":
            console.print("[bold]4/4[/] guarded deployment to the local endpoint (Prefect flow):")
            deployed = deployment_flow(env=env)
    print_training_summary(summary)
    if deployed is not None:
        console.print(
            f"deployment: {deployed['model']} v{deployed['version']} {deployed['decision']}; "
            "serve it with `.venv/bin/mlops serve` (http://127.0.0.1:8080/invocations)",
            highlight=False,
        )
    else:
        console.print("not deployed: the model did not pass its gates")
