"""The promotion flow: an approved model of one environment becomes an approved version of another."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipelines.promotion import promote
from pipelines.training import steps


@flow(name="promotion", log_prints=True)
def promotion_flow(
    source: str = "staging", target: str = "prod", version: int | None = None
) -> dict[str, Any]:
    """Promote `version` (default: the source champion); refuses versions that are not approved."""
    source_ctx, target_ctx = steps.open_environment(source), steps.open_environment(target)
    record = promote(source_ctx.platform, target_ctx.platform, source_ctx.model_name, version)
    create_markdown_artifact(
        key="promotion",
        markdown=(
            f"# Promotion\n\n{record.model_name} v{record.source_version} ({source}) → "
            f"v{record.target_version} ({target}) by {record.promoted_by}"
            f"{' (already promoted)' if record.already_promoted else ''}; "
            f"package sha256 `{record.package_sha256}`"
        ),
    )
    return asdict(record)
