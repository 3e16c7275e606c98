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
) -> None:
    """Serve the mounted model: GET /ping, POST /invocations."""
    import uvicorn

    from pipelines.serving.container import container_app
    from pipelines.serving.container import model_dir as default_model_dir

    with friendly_errors():
        application = container_app(model_dir or default_model_dir(), env)
    uvicorn.run(application, host=host, port=port, log_level="warning")
