"""`mlops experiment start|status|stop`: A/B test a challenger against the live champion."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

app = typer.Typer(
    help="A/B experiments: a challenger on a sticky share of the entities.", no_args_is_help=True
)
console = Console(soft_wrap=True)


def _expected() -> tuple[type[BaseException], ...]:
    from pipelines.errors import ExperimentError
    from pipelines.monitoring.steps import NothingToMonitor

    return (ExperimentError, NothingToMonitor)


@app.command("start")
def start(
    challenger: int = typer.Option(
        ..., "--challenger", help="Registered version to test against the champion."
    ),
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    model: str | None = typer.Option(None, help="Registered model (default: the environment's model)."),
    share: float = typer.Option(0.5, help="Share of the entities the challenger serves, in (0, 1)."),
    metric: str = typer.Option("auc", help="auc (model quality) or conversion (the outcome rate)."),
    better: str = typer.Option(
        "higher", help="Whether a higher or lower metric wins (lower for an outcome to avoid)."
    ),
    effect: float | None = typer.Option(
        None, help="Minimum detectable effect (default 0.02 AUC, 0.01 rate)."
    ),
) -> None:
    """Serve the challenger to a sticky share of the entities beside the live champion."""
    from pipelines.experiments.state import start_experiment
    from pipelines.training.steps import open_environment

    if better not in ("higher", "lower"):
        raise typer.BadParameter(f"expected higher or lower, got {better!r}", param_hint="--better")
    with friendly_errors(_expected()):
        ctx = open_environment(env)
        started = start_experiment(
            ctx.platform.deployer,
            ctx.platform.artifacts,
            ctx.platform.registry,
            model or ctx.model_name,
            challenger,
            share,
            metric,
            better,
            effect,
        )
    console.print(
        f"experiment on {started.model_name}: v{started.challenger} serves {started.share:.0%} of the entities "
        f"(sticky by {ctx.usecase.dataset.entity_key}), champion v{started.champion} the rest; metric {started.metric}",
        highlight=False,
    )


@app.command("status")
def status(env: str = typer.Option("local", "--env", "-e", help="Environment name.")) -> None:
    """The readout so far: each arm, the improvement with its interval, the always-valid p-value, the decision."""
    from pipelines.experiments.steps import experiment_readout
    from pipelines.training.steps import open_environment

    with friendly_errors(_expected()):
        experiment, readout, uri = experiment_readout(open_environment(env))
    for arm in readout.rows:
        console.print(
            f"  {arm}: {readout.rows[arm]:,} labelled rows, {readout.metric} {readout.values[arm]:.4f}",
            highlight=False,
        )
    console.print(
        f"{experiment.model_name} v{experiment.challenger} vs v{experiment.champion} ({experiment.status}): "
        f"[bold]{readout.decision}[/] · {readout.reason}",
        highlight=False,
    )
    console.print(f"report: {uri}", highlight=False)


@app.command("stop")
def stop(
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
    apply: bool = typer.Option(
        True, "--apply/--keep-champion", help="Promote the challenger if the readout says so."
    ),
) -> None:
    """End the experiment: the champion takes all traffic again, and a challenger the readout
    promotes is deployed through the guarded deployment."""
    from pipelines.experiments.state import stop_experiment
    from pipelines.experiments.steps import experiment_readout
    from pipelines.training.steps import open_environment

    with friendly_errors(_expected()):
        ctx = open_environment(env)
        experiment, readout, uri = experiment_readout(ctx)
        decision = readout.decision if apply else "keep"
        stopped = stop_experiment(
            ctx.platform.deployer,
            ctx.platform.artifacts,
            ctx.platform.registry,
            experiment.model_name,
            decision,
        )
        console.print(f"stopped: {decision} ({readout.reason}); report: {uri}", highlight=False)
        if decision == "promote":
            from mlops.cli.errors import prepare_flows

            prepare_flows(env)
            from pipelines.flows.deployment import deployment_flow

            outcome = deployment_flow(env=env, version=stopped.challenger)
            console.print(
                f"guarded deployment of v{stopped.challenger}: {outcome['decision']}", highlight=False
            )
