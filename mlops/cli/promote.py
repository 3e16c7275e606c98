"""`mlops promote model --from staging --to prod`: move an approved model between environments."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

app = typer.Typer(help="Promotion between environments (staging → prod).", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("model")
def model(
    source: str = typer.Option(..., "--from", help="Environment to promote from."),
    target: str = typer.Option(..., "--to", help="Environment to promote to."),
    name: str | None = typer.Option(
        None, "--model", help="Model name (default: the source's pipeline.model_name)."
    ),
    version: int | None = typer.Option(None, help="Version (default: the source's champion)."),
) -> None:
    """Promote an approved version; refuses anything that is not approved, with the reason."""
    from pipelines.promotion import PromotionRefused, promote
    from pipelines.training.steps import open_environment

    with friendly_errors(extra=(PromotionRefused,)):
        source_ctx, target_ctx = open_environment(source), open_environment(target)
        record = promote(
            source_ctx.platform, target_ctx.platform, name or source_ctx.settings.pipeline.model_name, version
        )
    console.print(
        f"promoted {record.model_name} v{record.source_version} ({record.source_environment}) → "
        f"v{record.target_version} ({record.target_environment}), by {record.promoted_by} at {record.promoted_at}",
        highlight=False,
    )
