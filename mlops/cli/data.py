"""`mlops data` and `mlops ingest`: example data and getting a user's file into the lake."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors, prepare_flows

app = typer.Typer(
    help="Example data: generate the use case's seeded example dataset, with optional drift and faults.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)


@app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.parquet or .csv)."),
    rows: int = typer.Option(200_000, help="Number of events, 1,000 to 10,000,000."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same data."),
    env: str = typer.Option(
        "local", "--env", "-e", help="Environment whose use-case spec describes the data."
    ),
    drift_column: str | None = typer.Option(
        None, help="Column whose distribution shifts from --drift-start."
    ),
    drift_start: datetime | None = typer.Option(None, help="Date the drift starts (UTC)."),
    drift_factor: float = typer.Option(
        1.5, help="Multiplier (numeric) or share of rows moved (categorical)."
    ),
    fault: list[str] = typer.Option(
        [], help="Data-quality fault to inject: null_keys, out_of_range, wrong_types, duplicates."
    ),
    fault_fraction: float = typer.Option(0.01, help="Share of rows each fault touches."),
    segments: int | None = typer.Option(
        None,
        help="How many values of the sweep's segment column to generate (e.g. 200 for a 200-segment sweep).",
    ),
) -> None:
    """Generate the example data of the environment's use case (its spec's example.generator)."""
    from mlops.settings import load_settings
    from pipelines.datagen.examples import generate_example
    from pipelines.datagen.perturb import Drift
    from pipelines.usecase import load_usecase

    with friendly_errors():
        usecase = load_usecase(load_settings(env).pipeline.usecase_path())
    drift = None
    if drift_column:
        start = (drift_start or datetime(2025, 10, 1)).replace(tzinfo=UTC)
        drift = Drift(drift_column, start, drift_factor)
    try:
        with friendly_errors():
            frame = generate_example(usecase, rows, seed, drift, tuple(fault), fault_fraction, segments)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    console.print(
        f"wrote {len(frame):,} rows for {frame[usecase.dataset.entity_key].nunique():,} "
        f"{usecase.dataset.entity_key} values to {out}"
    )


def ingest(
    path: Path = typer.Argument(
        ..., help="A Parquet or CSV file described by the environment's dataset spec."
    ),
    env: str = typer.Option("local", "--env", "-e", help="Environment name."),
) -> None:
    """Validate a batch and land it in the lake (raw, then curated); a failing batch is quarantined."""

    with friendly_errors():
        prepare_flows(env)
        from pipelines.flows.ingest import ingest_flow

        result = ingest_flow(env=env, source=str(path))
    console.print_json(json.dumps(result))
