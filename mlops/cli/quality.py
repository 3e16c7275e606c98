"""`mlops quality`: live accuracy of the served model from the labels that arrived since."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors, prepare_flows

console = Console(soft_wrap=True)


def quality(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    retrain: bool = typer.Option(
        True, "--retrain/--no-retrain", help="Retrain and redeploy on a degradation."
    ),
) -> None:
    """Join captured predictions to their late labels; report live quality per day, version and
    slice; retrain when it fell beyond pipeline.quality's thresholds."""
    with friendly_errors(_expected()):
        prepare_flows(env)
        from pipelines.flows.quality import quality_flow

        summary = quality_flow(env=env, retrain=retrain)
    result = summary["quality"]
    labels = result["labels"]
    console.print(
        f"{result['model_name']}: live quality [bold]{result['status']}[/] · "
        f"{labels['labelled']:,} labelled, {labels['pending']:,} pending, {labels['unlabelled']:,} unlabelled "
        f"of {labels['predictions']:,} predictions",
        highlight=False,
    )
    for version, value in result["live"].items():
        console.print(f"  v{version}: live {result['metric']} {value:.4f}", highlight=False)
    for fallen in result["degraded"]:
        console.print(
            f"  [red]degraded[/] v{fallen['model_version']} {fallen['group']}: {fallen['metric']} "
            f"{fallen['live']:.4f} vs {fallen['at_evaluation']:.4f} at evaluation ({fallen['rows']:,} rows)",
            highlight=False,
        )
    console.print(f"report: {result['report_uri']}", highlight=False)
    if summary["retraining"]:
        console.print(
            f"retrained: v{summary['retraining']['version']} {summary['retraining']['status']}",
            highlight=False,
        )


def _expected() -> tuple[type[BaseException], ...]:
    from pipelines.monitoring.steps import NothingToMonitor

    return (NothingToMonitor,)
