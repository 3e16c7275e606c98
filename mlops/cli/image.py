"""`mlops image publish --env NAME`: build the platform image and push it where the contract says."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

app = typer.Typer(help="The platform's container image.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("publish")
def publish(env: str = typer.Option(..., "--env", "-e", help="Environment (dev, staging, prod).")) -> None:
    """Build the image (Dockerfile at the project root) and push it to the environment's ECR."""
    from mlops.contract_source import load_platform_contract
    from mlops.images import ImageError
    from mlops.images import publish as publish_image
    from mlops.paths import project_root
    from mlops.settings import load_settings
    from pipelines.adapters.aws.session import client

    with friendly_errors(extra=(ImageError,)):
        contract = load_platform_contract(load_settings(env))
        outcome = publish_image(contract, project_root(), client("ecr", contract.region))
    for uri, what in outcome.items():
        console.print(f"{uri}: {what}", highlight=False)
