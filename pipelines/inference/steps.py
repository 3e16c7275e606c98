"""The batch-inference flow's steps: resolve what to score, then run the job on the environment's
compute (in this process locally, a Batch job on AWS) unless its predictions exist already."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.errors import BatchInferenceError, NoCuratedData
from pipelines.features.engine import total_rows
from pipelines.inference.job import BatchInferenceSpec, existing_predictions
from pipelines.lake.ingest import curated_table
from pipelines.ports import ApprovalStatus, ModelVersion

if TYPE_CHECKING:
    from pipelines.training.steps import PipelineContext


def predictions_table(model_name: str) -> str:
    """The lake table of a model's predictions (Glue and Athena names take no hyphen)."""
    return f"predictions.{model_name.replace('-', '_')}"


def _model_version(ctx: PipelineContext, model: str, version: int | None) -> ModelVersion:
    registry = ctx.platform.registry
    if version is None:
        champion = registry.champion(model)
        if champion is None:
            raise BatchInferenceError(
                f"model {model!r} has no approved version to score with: train one first (mlops run training)"
            )
        return champion
    try:
        chosen = registry.get(model, version)
    except Exception as exc:
        raise BatchInferenceError(f"--version {version}: {exc}") from exc
    if chosen.status != ApprovalStatus.APPROVED:
        raise BatchInferenceError(
            f"--version {version}: {model} v{version} is {chosen.status.value}; only approved versions score the lake"
        )
    signature = chosen.lineage.get("usecase_signature")
    if signature is not None and signature != ctx.usecase.signature():
        raise BatchInferenceError(
            f"--version {version}: {model} v{version} was trained for another use case "
            f"({chosen.lineage.get('usecase', '?')})"
        )
    return chosen


def _input_snapshot(ctx: PipelineContext, table: str, snapshot: int | None) -> tuple[int, int]:
    """(snapshot id, rows) of the input table: the one asked for, else the current one."""
    lake = ctx.platform.lake
    known = {s.snapshot_id: s for s in lake.snapshots(table)}
    if not known:
        raise NoCuratedData(f"--table {table}: the lake has no such table, or it has no data yet")
    if snapshot is None:
        current = lake.current_snapshot(table)
        assert current is not None  # a table with snapshots has a current one
        return current.snapshot_id, total_rows(current)
    if snapshot not in known:
        gone = next((s for s in lake.history(table) if s.snapshot_id == snapshot), None)
        if gone is not None:
            raise BatchInferenceError(
                f"--snapshot {snapshot}: {table}'s snapshot of {gone.committed_at:%Y-%m-%d %H:%M} UTC has "
                "expired under the table's retention (history.expire.max-snapshot-age-ms and "
                "history.expire.min-snapshots-to-keep; snapshots a registered model was trained on are kept)"
            )
        raise BatchInferenceError(
            f"--snapshot {snapshot}: not a snapshot of {table} (its latest: "
            f"{', '.join(str(s) for s in list(known)[-3:])})"
        )
    return snapshot, total_rows(known[snapshot])


def features_step(ctx: PipelineContext) -> None:
    """Bring the offline features up to the current curated snapshot; when they are current already,
    nothing is read (the training flow's step rereads them to refresh the online store)."""
    from pipelines.training.steps import feature_step

    curated = ctx.platform.lake.current_snapshot(curated_table(ctx.usecase.dataset))
    if curated is not None and ctx.features.current_for(ctx.usecase.features, curated.snapshot_id):
        return
    feature_step(ctx)


def plan(
    ctx: PipelineContext,
    model: str | None = None,
    version: int | None = None,
    table: str | None = None,
    snapshot: int | None = None,
) -> BatchInferenceSpec:
    """The job spec of scoring `table` at `snapshot` with `model` v`version` (defaults: the
    environment's model, its champion, the configured table or curated, its current snapshot)."""
    settings = ctx.settings.pipeline.batch_inference
    dataset, view = ctx.usecase.dataset, ctx.usecase.features
    model_name = model or ctx.model_name
    chosen = _model_version(ctx, model_name, version)
    source = table or settings.table or curated_table(dataset)
    snapshot_id, rows = _input_snapshot(ctx, source, snapshot)
    columns = ctx.platform.lake.schema(source).names
    for role, column in (("entity key", dataset.entity_key), ("event time", dataset.event_time)):
        if column not in columns:
            raise BatchInferenceError(
                f"--table {source}: it has no column {column!r} (the use case's {role}), so its rows "
                "cannot be given point-in-time features"
            )
    features_table = ctx.features.offline_table(view)
    features = ctx.platform.lake.current_snapshot(features_table)
    if features is None:
        raise NoCuratedData(f"{features_table} has no features yet: run the training flow first")
    keys = [
        c
        for c in dict.fromkeys([*dataset.primary_key, dataset.entity_key, dataset.event_time])
        if c in columns
    ]
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    return BatchInferenceSpec(
        run_id=run_id,
        model_name=chosen.model_name,
        model_version=chosen.version,
        model_uri=chosen.artifact_uri,
        input_table=source,
        input_snapshot_id=snapshot_id,
        input_rows=rows,
        key_columns=keys,
        entity_key=dataset.entity_key,
        event_time=dataset.event_time,
        features_table=features_table,
        features_snapshot_id=features.snapshot_id,
        ttl_days=view.ttl_days,
        output_table=predictions_table(chosen.model_name),
        lake=ctx.platform.contract.lake,
        region=ctx.platform.contract.region,
        artifacts=ctx.platform.contract.artifacts,
        result_key=f"batch-inference/{chosen.model_name}/{run_id}/result.json",
        chunk_rows=settings.chunk_rows,
        memory_limit=settings.memory_limit,
    )


def fanout_spec(ctx: PipelineContext, spec: BatchInferenceSpec) -> str:
    """Store the job as a one-child fan-out (what a Batch container runs:
    `python -m pipelines.fanout URI 0`); returns its URI."""
    from pipelines.fanout import FanoutSpec

    fanout = FanoutSpec(
        handler="pipelines.inference.job:fanout_child", size=1, payload=spec.model_dump(mode="json")
    )
    key = f"batch-inference/{spec.model_name}/{spec.run_id}/fanout.json"
    return ctx.platform.artifacts.put_bytes(key, fanout.model_dump_json().encode())


def run(ctx: PipelineContext, spec: BatchInferenceSpec) -> dict[str, Any]:
    """Run the job on the environment's compute, or return the predictions already written."""
    from pipelines.inference.job import result_of

    done = existing_predictions(ctx.platform.lake, spec.output_table, spec.identity())
    if done is not None:  # no job at all: the run's answer is in the lake already
        return result_of(spec, done, seconds=0.0, written=False)
    (job,) = ctx.platform.compute.run_array(fanout_spec(ctx, spec), 1)
    result: dict[str, Any] = json.loads(ctx.platform.artifacts.get_bytes(spec.result_key))
    result["job_id"] = job.job_id
    return result
