"""`mlops ci`: helpers the GitHub workflows call (the logic lives here, tested, not in YAML)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Helpers for the CI/CD workflows.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


@app.command("aws-web-identity")
def aws_web_identity(
    role_arn: str = typer.Option(..., help="The IAM role the workflow assumes."),
    token_file: Path = typer.Option(Path(".oidc/aws-token"), help="Where to keep the OIDC token."),
    session: str = typer.Option("mlops-ci", help="Role session name."),
) -> None:
    """Fetch GitHub's OIDC token and export AWS web-identity variables to $GITHUB_ENV (or print them)."""
    from mlops.ci import OidcUnavailable, web_identity_environment

    try:
        variables = web_identity_environment(role_arn, token_file.resolve(), session)
    except OidcUnavailable as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    lines = "".join(f"{k}={v}\n" for k, v in variables.items())
    target = os.environ.get("GITHUB_ENV")
    if target:
        with Path(target).open("a") as handle:
            handle.write(lines)
    else:
        print(lines, end="")
