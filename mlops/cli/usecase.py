"""`mlops usecase`: draft a use-case spec from a data sample, and explain what a spec will do."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from mlops.cli.errors import friendly_errors

app = typer.Typer(
    help="Use-case specs: draft one from your data, check what one will do.", no_args_is_help=True
)
console = Console(soft_wrap=True)


@app.command("init")
def init(
    sample: Path = typer.Option(..., "--from", help="A CSV or Parquet sample of your data."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the drafted spec (.yaml)."),
    name: str | None = typer.Option(None, help="Dataset name (default: the sample's file name)."),
    force: bool = typer.Option(False, help="Overwrite --out if it exists."),
) -> None:
    """Draft a spec from a sample: types, ranges, allowed sets, nullability, and guessed roles to confirm."""
    from pipelines.usecase.draft import draft_usecase, read_sample

    with friendly_errors():
        if out.exists() and not force:
            raise typer.BadParameter(f"{out} exists (use --force to overwrite)")
        text = draft_usecase(read_sample(sample), name or sample.stem)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    console.print(
        f"drafted {out}; confirm the guessed roles at its top, then: mlops usecase check {out}",
        highlight=False,
    )


@app.command("check")
def check(
    spec: Path | None = typer.Argument(None, help="A use-case YAML (default: the environment's)."),
    env: str = typer.Option("local", "--env", "-e", help="Environment whose pipeline.usecase to check."),
) -> None:
    """Validate a spec and explain what each part of it will do."""
    from mlops.settings import load_settings
    from pipelines.usecase import load_usecase
    from pipelines.usecase.draft import explain

    with friendly_errors():
        path = spec or load_settings(env).pipeline.usecase_path()
        usecase = load_usecase(path)
    console.print(f"[bold]{escape(str(path))}[/] is valid:")
    for line in explain(usecase):
        console.print(f"  {escape(line)}", highlight=False)
