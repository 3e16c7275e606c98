"""`mlops promote`: move an approved model between environments, in one step or across accounts.

`model --from staging --to prod` needs credentials that reach both environments. Across accounts
(the release workflow), `export` runs with the source's credentials and `import` with the
target's; the package directory travels between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors

if TYPE_CHECKING:
    from pipelines.promotion import Promotion

app = typer.Typer(help="Promotion between environments (staging → prod).", no_args_is_help=True)
console = Console(soft_wrap=True)

MODEL_HELP = "Model name (default: the source environment's use-case model)."
VERSION_HELP = "Version (default: the source's champion)."


def _refusals() -> tuple[type[BaseException], ...]:
    from pipelines.promotion import PromotionRefused
    from pipelines.promotion_package import InvalidPackage

    return (PromotionRefused, InvalidPackage)


def _report(record: Promotion) -> None:
    outcome = "already promoted:" if record.already_promoted else "promoted"
    console.print(
        f"{outcome} {record.model_name} v{record.source_version} ({record.source_environment}) → "
        f"v{record.target_version} ({record.target_environment}), by {record.promoted_by} at {record.promoted_at}; "
        f"package sha256 {record.package_sha256[:12]}",
        highlight=False,
    )


@app.command("model")
def model(
    source: str = typer.Option(..., "--from", help="Environment to promote from."),
    target: str = typer.Option(..., "--to", help="Environment to promote to."),
    name: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    version: int | None = typer.Option(None, help=VERSION_HELP),
) -> None:
    """Promote an approved version; refuses anything that is not approved, with the reason."""
    from pipelines.promotion import promote
    from pipelines.training.steps import open_environment

    with friendly_errors(extra=_refusals()):
        source_ctx, target_ctx = open_environment(source), open_environment(target)
        record = promote(source_ctx.platform, target_ctx.platform, name or source_ctx.model_name, version)
    _report(record)


@app.command("export")
def export(
    source: str = typer.Option(..., "--from", help="Environment to export from."),
    out: Path = typer.Option(Path("promotion"), "--out", help="Directory to write the package to."),
    name: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    version: int | None = typer.Option(None, help=VERSION_HELP),
) -> None:
    """Package an approved version (record, bundle, checksums) with the source's credentials."""
    from pipelines.promotion import export_approved
    from pipelines.training.steps import open_environment

    with friendly_errors(extra=_refusals()):
        ctx = open_environment(source)
        manifest = export_approved(ctx.platform, name or ctx.model_name, out, version)
    console.print(
        f"exported {manifest.model_name} v{manifest.source_version} ({manifest.source_environment}, "
        f"run {manifest.run_key}) to {out}",
        highlight=False,
    )


@app.command("import")
def import_(
    target: str = typer.Option(..., "--to", help="Environment to promote into."),
    package: Path = typer.Option(
        Path("promotion"), "--package", help="Directory `mlops promote export` wrote."
    ),
) -> None:
    """Verify a package and register its version, approved, with the target's credentials."""
    from pipelines.promotion import import_approved
    from pipelines.training.steps import open_environment

    with friendly_errors(extra=_refusals()):
        record = import_approved(open_environment(target).platform, package)
    _report(record)
