"""`mlops container serve`: what the platform image runs when SageMaker starts it with `serve`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mlops.cli.errors import friendly_errors

app = typer.Typer(help="Entry points of the platform's container image.", no_args_is_help=True)


@app.command("serve")
def serve(
    env: str = typer.Option(
        lambda: os.environ.get("MLOPS_ENVIRONMENT", "local"),
        "--env",
        "-e",
        help="Environment whose use case the model serves (default: $MLOPS_ENVIRONMENT).",
        show_default=False,
    ),
    model_dir: Path | None = typer.Option(
        None, help="Model bundle directory (default: $SM_MODEL_DIR or /opt/ml/model)."
    ),
    host: str = typer.Option("0.0.0.0", help="Interface (inside a container, every interface)."),
    port: int = typer.Option(8080, help="SageMaker's serving port."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (default: the environment's serving.workers)."
    ),
) -> None:
    """Serve the mounted model: GET /ping, POST /invocations."""
    from mlops.settings import load_settings
    from models.threads import WORKERS_ENV
    from pipelines.serving.container import ENVIRONMENT_ENV, MODEL_DIR_ENV, container_app, require_model
    from pipelines.serving.container import model_dir as default_model_dir
    from pipelines.serving.server import run_server

    with friendly_errors():
        directory = model_dir or default_model_dir()
        processes = workers or load_settings(env).serving.worker_count()
        # Checked here once, so a missing model is one line before any worker starts.
        require_model(directory)
        application = container_app(directory, env) if processes == 1 else None
    os.environ.update({ENVIRONMENT_ENV: env, MODEL_DIR_ENV: str(directory), WORKERS_ENV: str(processes)})
    run_server(application or "pipelines.serving.container:worker_app", host, port, processes)
