"""The sweep's model: every segment's winner and the global model as fallback, in one segmented
bundle, evaluated, gated and registered like any training run (so the guarded deployment, its smoke
test, monitoring and batch inference take it unchanged)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pandas as pd

from models.bundle import ModelBundle
from models.metrics import selection_score
from models.segmented import SegmentedBundle
from pipelines.adapters.factory import read_uri
from pipelines.onnx_model import model_files
from pipelines.ports import ModelVersion
from pipelines.sweep.plan import SweepPlan
from pipelines.sweep.steps import GLOBAL_SCORE, judgeable, read_split, segments_scored, winner_list
from pipelines.training.bundles import load_bundle
from pipelines.training.run_spec import TrainingRunSpec
from pipelines.training.steps import PipelineContext, PreparedRun, evaluate_step, register_step

log = logging.getLogger(__name__)
COPIED_SPLITS = ("train", "test")  # what monitoring and the deployment read by a version's run key


def segmented_run_key(prepared: PreparedRun, plan: SweepPlan) -> str:
    """The run key of a sweep's model: its training set's, and the sweep's."""
    return f"{prepared.run_key}-sweep-{plan.sweep_key[:8]}"


def segments_beating_global(
    ctx: PipelineContext, plan: SweepPlan, prepared: PreparedRun, best: pd.DataFrame, fallback: ModelBundle
) -> list[str]:
    """The segments whose winner scores better than the global model on the segment's validation
    rows: only they get their own model (choosing on validation, so the test split stays unseen)."""
    spec = TrainingRunSpec.model_validate_json(read_uri(prepared.spec_uri))
    by_segment = segments_scored(read_split(ctx, spec.valid_key), plan.segment_column, fallback)
    chosen = []
    for row in winner_list(best):
        if row.segment is None:  # rows without a segment value go to the fallback anyway
            continue
        valid = by_segment.get(row.segment)
        if valid is None or not judgeable(valid, plan.label, plan.task):
            continue
        labels = valid[plan.label].to_numpy(dtype="float64")
        if row.score > selection_score(plan.task, labels, valid[GLOBAL_SCORE].to_numpy()):
            chosen.append(row.segment)
    return chosen


def register_segmented(
    ctx: PipelineContext,
    plan: SweepPlan,
    prepared: PreparedRun,
    global_model: dict[str, Any],
    best: pd.DataFrame,
    members: dict[str | None, ModelBundle],
    summary: dict[str, Any],
) -> tuple[ModelVersion | None, str]:
    """Register the segmented model (once per sweep); returns the version, or None and why not."""
    fallback = load_bundle(global_model["model_uri"])
    if plan.segment_column not in fallback.encoder.categorical:
        return None, (
            f"sweep.segment {plan.segment_column!r} is not a feature of the model, so a request cannot be "
            "routed by it: add it to features.latest to register a segmented model"
        )
    chosen = segments_beating_global(ctx, plan, prepared, best, fallback)
    named = {segment: members[segment] for segment in chosen}
    if not named:
        return (
            None,
            "no segment's winner beats the global model on its validation rows: the global model serves",
        )
    model = SegmentedBundle(fallback, plan.segment_column, named)
    store, run_key = ctx.platform.artifacts, segmented_run_key(prepared, plan)
    prefix, source = f"runs/{ctx.model_name}/{run_key}", f"runs/{ctx.model_name}/{prepared.run_key}"
    for name, payload in {**model.to_files(), **model_files(model)}.items():
        store.put_bytes(f"{prefix}/model/{name}", payload)
    for split in COPIED_SPLITS:
        store.put_bytes(f"{prefix}/data/{split}.parquet", store.get_bytes(f"{source}/data/{split}.parquet"))
    run = replace(
        prepared,
        run_key=run_key,
        lineage={
            **prepared.lineage,
            "sweep_key": plan.sweep_key,
            "sweep_report": summary["report"],
            "sweep_results": summary["results_table"],
            "segments": len(named),
            "segments_on_global_model": len(plan.segments) - len(named),
            "global_run_key": prepared.run_key,
        },
    )
    result = {
        "model_uri": store.uri(f"{prefix}/model"),
        "curves_uri": summary["report"],
        "tracking_run_id": summary.get("tracking_run_id", ""),
    }
    version = register_step(ctx, run, result, evaluate_step(ctx, run, result))
    log.info(
        "%s v%d (segmented, %d segments): %s", version.model_name, version.version, len(named), version.status
    )
    return version, version.status_reason
