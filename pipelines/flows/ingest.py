"""The ingest flow: validate one batch and land it in the lake, or quarantine it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipelines.flows.training import ingest
from pipelines.training import steps


@flow(name="ingest", log_prints=True)
def ingest_flow(env: str = "local", source: str = "") -> dict[str, Any]:
    """Validate `source` against the dataset spec; land it (raw + curated) or quarantine it."""
    ctx = steps.open_environment(env)
    result = ingest(ctx, Path(source))
    create_markdown_artifact(
        key="ingest-summary",
        markdown=(
            f"# Ingest of `{Path(source).name}`\n\nbatch `{result.batch_id}`: {result.rows:,} rows, "
            f"{result.new_curated_rows:,} new in curated (snapshot `{result.curated_snapshot_id}`)"
            + (" (already ingested)" if result.already_ingested else "")
        ),
    )
    return result.to_dict()
