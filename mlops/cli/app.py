"""`mlops`: bring environments up, make and ingest data, run pipelines, inspect models."""

from __future__ import annotations

import os

import typer

from mlops.cli import (
    ci,
    container,
    data,
    doctor,
    env,
    experiment,
    flows,
    image,
    models,
    plan,
    predict,
    promote,
    quality,
    run,
    serving,
    usecase,
)
from mlops.runtime import configure_runtime

app = typer.Typer(
    name="mlops",
    help="MLOps blueprint: one platform contract, a local environment and AWS environments.\n\n"
    "Quick start: `mlops demo` brings the local environment up, generates example data and runs "
    "the full training pipeline on it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show Prefect's tracebacks for expected outcomes (a rejected batch)."
    ),
) -> None:
    if verbose:
        os.environ["MLOPS_VERBOSE"] = "1"


app.add_typer(env.app, name="env")
app.add_typer(data.app, name="data")
app.add_typer(usecase.app, name="usecase")
app.add_typer(run.app, name="run")
app.add_typer(models.app, name="models")
app.add_typer(promote.app, name="promote")
app.add_typer(flows.app, name="flows")
app.add_typer(experiment.app, name="experiment")
app.add_typer(ci.app, name="ci")
app.add_typer(container.app, name="container")
app.add_typer(image.app, name="image")
app.command("ingest")(data.ingest)
app.command("demo")(run.demo)
app.command("plan")(plan.plan)
app.command("predict")(predict.predict)
app.command("quality")(quality.quality)
app.command("doctor")(doctor.doctor)
for command in (serving.deploy, serving.serve, serving.invoke, serving.monitor):
    app.command(command.__name__)(command)


def main() -> None:
    configure_runtime()
    app()
