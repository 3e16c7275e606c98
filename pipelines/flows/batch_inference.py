"""The batch-inference flow: bring the features up to date, then score a lake snapshot with a
registered model and write `predictions.<model>` (once per model version and input snapshot)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.inference import steps as inference
from pipelines.training import steps

update_features = task(name="update-features", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)(
    inference.features_step
)
plan = task(name="plan-batch-inference", cache_policy=NO_CACHE)(inference.plan)
# A retried job first looks for the snapshot a killed attempt may have committed: never twice.
score = task(name="score-snapshot", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)(inference.run)


@flow(name="batch-inference", log_prints=True)
def batch_inference_flow(
    env: str = "local",
    model: str | None = None,
    version: int | None = None,
    table: str | None = None,
    snapshot: int | None = None,
) -> dict[str, Any]:
    """Score `table` at `snapshot` (default: the configured table or curated, its current snapshot)
    with `model` v`version` (default: the environment's model, its champion)."""
    ctx = steps.open_environment(env)
    update_features(ctx)
    spec = plan(ctx, model, version, table, snapshot)
    result = score(ctx, spec)
    state = "written" if result["written"] else "already written: nothing new"
    print(
        f"{result['rows']:,} predictions of {result['model_name']} v{result['model_version']} on "
        f"{result['input_table']}@{result['input_snapshot_id']} in {result['output_table']} "
        f"(snapshot {result['snapshot_id']}, {state})"
    )
    create_markdown_artifact(
        key="batch-inference",
        markdown=(
            f"# Batch inference with {result['model_name']} v{result['model_version']}\n\n"
            f"| | |\n|---|---|\n| input | `{result['input_table']}` snapshot {result['input_snapshot_id']} |\n"
            f"| features snapshot | {result['features_snapshot_id']} |\n"
            f"| predictions | `{result['output_table']}` snapshot {result['snapshot_id']} ({state}) |\n"
            f"| rows | {result['rows']:,} |\n| seconds | {result['seconds']} |\n"
        ),
    )
    return result
