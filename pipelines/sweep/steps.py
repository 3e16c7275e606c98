"""The sweep flow's steps as plain functions: plan, run the chunks, gather, record, pick the winners.

One curated snapshot and one feature build feed every trial: the sweep reuses the training
pipeline's prepared run (its time-split training set) and its global model, which serves the
segments too small to have their own and is what each segment's winner is compared against.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.bundle import ModelBundle
from models.metrics import selection_score
from pipelines.adapters.factory import read_uri
from pipelines.fanout import FanoutSpec
from pipelines.ports import Snapshot
from pipelines.progress import Progress
from pipelines.sweep.plan import SegmentData, SweepPlan, cut_chunks
from pipelines.training.bundles import load_bundle
from pipelines.training.run_spec import TrainingRunSpec
from pipelines.training.steps import PipelineContext, PreparedRun
from pipelines.usecase import UseCaseError
from pipelines.usecase.sweep import SweepSpec

log = logging.getLogger(__name__)
SWEEP_PROPERTY = "mlops.sweep-key"
MIN_VALID_ROWS = 10
GLOBAL_SCORE = "__global_model_score"  # a scratch column: the global model's answer to a row


def sweeps_table(model_name: str) -> str:
    """The lake table of a model's sweep results (Glue and Athena names take no hyphen)."""
    return f"sweeps.{model_name.replace('-', '_')}"


def sweep_spec(ctx: PipelineContext, trials: int | None = None) -> SweepSpec:
    """The use case's sweep, with its trials per segment overridden by `trials` when given, else by
    the environment's `pipeline.sweep.trials_per_segment` when set."""
    sweep = ctx.usecase.sweep
    if sweep is None:
        raise UseCaseError(
            f"{ctx.settings.pipeline.usecase} declares no sweep: add a `sweep:` section (segment column "
            "and search space; see the README's Sweeps section)"
        )
    per_segment = trials if trials is not None else ctx.settings.pipeline.sweep.trials_per_segment
    if per_segment is not None:
        if not 1 <= per_segment <= 10_000:
            raise UseCaseError(f"trials per segment must be between 1 and 10,000 (got {per_segment})")
        sweep = sweep.model_copy(update={"trials_per_segment": per_segment})
    return sweep


def read_split(ctx: PipelineContext, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(ctx.platform.artifacts.get_bytes(key)))


def _segments(frame: pd.DataFrame, column: str) -> Iterator[tuple[str | None, pd.DataFrame]]:
    values = frame[column].astype(object).where(frame[column].notna(), None)
    for value, rows in frame.groupby(values.fillna("\0"), sort=True, dropna=False):
        yield (None if value == "\0" else str(value)), rows


def segments_scored(frame: pd.DataFrame, column: str, model: ModelBundle) -> dict[str | None, pd.DataFrame]:
    """Each segment's rows of `frame`, with `model`'s answer to each row in a `GLOBAL_SCORE` column:
    the whole frame scored in one call rather than one call per segment."""
    scored = frame.assign(**{GLOBAL_SCORE: model.predict(frame)})
    return dict(_segments(scored, column))


def judgeable(rows: pd.DataFrame | None, label: str, task: str) -> bool:
    """Whether a segment's rows can score a model: enough of them, and both classes for a binary label
    (AUC is undefined on one class)."""
    if rows is None or len(rows) < MIN_VALID_ROWS:
        return False
    return task != "binary" or rows[label].nunique() == 2


def plan_sweep(
    ctx: PipelineContext, prepared: PreparedRun, sweep: SweepSpec, chunk_trials: int, stacked: bool = True
) -> tuple[SweepPlan, str]:
    """Cut the prepared training set into segments and the trials into chunks; returns the plan and
    its URI. A plan already stored under the same key (same data, spec and settings) is reused."""
    store = ctx.platform.artifacts
    spec = TrainingRunSpec.model_validate_json(read_uri(prepared.spec_uri))
    trials = sweep.trials()
    identity = {
        "run": prepared.run_key,
        "sweep": sweep.model_dump(mode="json"),
        "chunk_trials": chunk_trials,
        "stacked": stacked,
    }
    sweep_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    prefix = f"sweeps/{spec.model_name}/{sweep_key}"
    plan_key = f"{prefix}/plan.json"
    if store.exists(plan_key):
        return SweepPlan.model_validate_json(store.get_bytes(plan_key)), store.uri(plan_key)
    train, valid = read_split(ctx, spec.train_key), read_split(ctx, spec.valid_key)
    valid_by_segment = dict(_segments(valid, sweep.segment))
    segments: list[SegmentData] = []
    fallback: list[str | None] = []
    for number, (name, rows) in enumerate(_segments(train, sweep.segment)):
        checked = valid_by_segment.get(name)
        if (
            checked is None
            or len(rows) < sweep.min_segment_rows
            or not judgeable(checked, spec.label, spec.task)
        ):
            fallback.append(name)
            continue
        keys = (
            f"{prefix}/segments/{number:04d}/train.parquet",
            f"{prefix}/segments/{number:04d}/valid.parquet",
        )
        for key, part in zip(keys, (rows, checked), strict=True):
            buffer = io.BytesIO()
            part.to_parquet(buffer, index=False)
            store.put_bytes(key, buffer.getvalue())
        segments.append(SegmentData(name=name, train_key=keys[0], valid_key=keys[1], train_rows=len(rows)))
    if not segments:
        raise UseCaseError(
            f"no {sweep.segment} segment has sweep.min_segment_rows ({sweep.min_segment_rows}) training rows"
        )
    # Largest first: workers take the next chunk when free, so the big ones do not come last.
    segments.sort(key=lambda segment: -segment.train_rows)
    training = spec.training
    plan = SweepPlan(
        sweep_key=sweep_key,
        model_name=spec.model_name,
        task=spec.task,
        label=spec.label,
        segment_column=sweep.segment,
        numeric_features=spec.numeric_features,
        categorical_features=dict(spec.categorical_features),
        artifacts=spec.artifacts,
        prefix=prefix,
        trials=trials,
        segments=segments,
        fallback=fallback,
        chunks=cut_chunks(len(segments), len(trials), chunk_trials),
        base={
            "max_epochs": training.max_epochs,
            "batch_size": sweep.batch_size,
            "learning_rate": training.learning_rate,
            "weight_decay": training.weight_decay,
            "patience": training.patience,
            "seed": sweep.seed,
        },
        architecture={
            "embedding_dim": training.embedding_dim,
            "hidden_sizes": list(training.hidden_sizes),
            "dropout": training.dropout,
        },
        stacked=stacked,
    )
    return plan, store.put_bytes(plan_key, plan.model_dump_json(indent=2).encode())


@contextmanager
def _watching(ctx: PipelineContext, plan: SweepPlan, every: float = 2.0) -> Iterator[None]:
    """A progress bar of trials done (chunks whose results are stored), updated while the chunks run
    wherever they run: in this process, or as Batch array children writing to S3."""
    progress = Progress(plan.total_trials, "trials", log, every=every)
    pending = dict(enumerate(plan.chunks))
    stop = threading.Event()

    def poll() -> None:
        while pending and not stop.wait(every):
            for index in [i for i in pending if ctx.platform.artifacts.exists(plan.result_key(i))]:
                progress.advance(pending.pop(index).trials)

    for index in [i for i in pending if ctx.platform.artifacts.exists(plan.result_key(i))]:
        pending.pop(index)  # done by an earlier run: not counted in this run's rate
    progress.total = sum(chunk.trials for chunk in pending.values())
    watcher = threading.Thread(target=poll, name="sweep-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        for index in [i for i in pending if ctx.platform.artifacts.exists(plan.result_key(i))]:
            progress.advance(pending.pop(index).trials)
        progress.finish()


def run_chunks(ctx: PipelineContext, plan: SweepPlan, plan_uri: str) -> int:
    """Run the chunks not done yet through the compute port (array jobs of at most 10,000 children on
    the GPU queue on AWS; in this process locally); returns how many chunks this run trained."""
    todo = [i for i in range(len(plan.chunks)) if not ctx.platform.artifacts.exists(plan.result_key(i))]
    if not todo:
        log.info("sweep %s: every chunk is done", plan.sweep_key)
        return 0
    fanout = FanoutSpec(
        handler="pipelines.sweep.job:sweep_chunk", size=len(plan.chunks), payload={"plan_uri": plan_uri}
    )
    uri = ctx.platform.artifacts.put_bytes(f"{plan.prefix}/fanout.json", fanout.model_dump_json().encode())
    log.info(
        "sweep %s: %d segments x %d trials in %d chunks (%d to run), %d segments on the global model",
        plan.sweep_key,
        len(plan.segments),
        len(plan.trials),
        len(plan.chunks),
        len(todo),
        len(plan.fallback),
    )
    with _watching(ctx, plan):
        ctx.platform.compute.run_array(uri, len(plan.chunks), gpu=True)
    return len(todo)


def gather(ctx: PipelineContext, plan: SweepPlan) -> pd.DataFrame:
    """Every trial's row, from the chunks' result files."""
    rows: list[dict[str, Any]] = []
    for index in range(len(plan.chunks)):
        key = plan.result_key(index)
        if not ctx.platform.artifacts.exists(key):
            raise RuntimeError(f"sweep chunk {index} has no results ({key}): run the sweep again to resume")
        rows.extend(json.loads(ctx.platform.artifacts.get_bytes(key)))
    return pd.DataFrame(rows)


def record(
    ctx: PipelineContext, plan: SweepPlan, results: pd.DataFrame, snapshots: dict[str, int]
) -> Snapshot:
    """Append the sweep's rows to `sweeps.<model>` in one snapshot, with the snapshot ids of the data
    they were trained on; a sweep already recorded (same key) is not recorded twice."""
    import pyarrow as pa

    table, lake = sweeps_table(plan.model_name), ctx.platform.lake
    if lake.current_snapshot(table) is not None:
        done = [s for s in lake.history(table) if s.properties.get(SWEEP_PROPERTY) == plan.sweep_key]
        if done:
            return done[-1]
    rows = results.assign(
        segment=results["segment"].astype(object),
        sweep_key=plan.sweep_key,
        **{f"{name.split('.')[0]}_snapshot_id": snapshot for name, snapshot in snapshots.items()},
    )
    properties = {SWEEP_PROPERTY: plan.sweep_key, **{f"mlops.{k}": str(v) for k, v in snapshots.items()}}
    return lake.append(table, pa.Table.from_pandas(rows, preserve_index=False), properties)


@dataclass(frozen=True)
class Winner:
    segment: str | None
    trial: int
    score: float
    train_rows: int


def winner_list(best: pd.DataFrame) -> list[Winner]:
    """The rows of `winners` as typed records."""
    return [
        Winner(None if pd.isna(segment) else str(segment), int(trial), float(score), int(rows))
        for segment, trial, score, rows in zip(
            best["segment"].tolist(),
            best["trial"].tolist(),
            best["score"].tolist(),
            best["train_rows"].tolist(),
            strict=True,
        )
    ]


def winners(results: pd.DataFrame) -> pd.DataFrame:
    """Each segment's best trial by validation score (the lower trial index on a tie)."""
    scored = results[np.isfinite(results["score"].astype(float))]
    ordered = scored.sort_values(["score", "trial"], ascending=[False, True], kind="stable")
    return ordered.drop_duplicates("segment", keep="first").sort_values("segment", na_position="last")


@dataclass(frozen=True)
class SegmentEvaluation:
    segment: str | None
    test_rows: int
    winner_score: float
    global_score: float
    trial: int
    parameters: dict[str, Any]


def train_winners(ctx: PipelineContext, plan: SweepPlan, best: pd.DataFrame) -> dict[str | None, ModelBundle]:
    """Each segment's winning trial as a bundle, with the weights its chunk kept (trained again
    only for chunks that kept none)."""
    from pipelines.sweep.job import winner_bundle

    segments = {segment.name: segment for segment in plan.segments}
    return {
        row.segment: winner_bundle(plan, ctx.platform.artifacts, segments[row.segment], row.trial, chunk)
        for row, chunk in zip(winner_list(best), best["chunk"].astype(int).tolist(), strict=True)
    }


def evaluate_winners(
    ctx: PipelineContext,
    plan: SweepPlan,
    best: pd.DataFrame,
    members: dict[str | None, ModelBundle],
    test_key: str,
    global_uri: str,
) -> list[SegmentEvaluation]:
    """Each winner scored on its segment's test rows, beside the global model on the same rows."""
    test = read_split(ctx, test_key)
    by_segment = segments_scored(test, plan.segment_column, load_bundle(global_uri))
    evaluations = []
    for row in winner_list(best):
        rows = by_segment.get(row.segment)
        if rows is None or not judgeable(rows, plan.label, plan.task):
            continue
        bundle = members[row.segment]
        labels = rows[plan.label].to_numpy(dtype="float64")
        evaluations.append(
            SegmentEvaluation(
                segment=row.segment,
                test_rows=len(rows),
                winner_score=selection_score(plan.task, labels, bundle.predict(rows)),
                global_score=selection_score(plan.task, labels, rows[GLOBAL_SCORE].to_numpy()),
                trial=row.trial,
                parameters=dict(plan.trials[row.trial]),
            )
        )
    return evaluations


def publish(
    ctx: PipelineContext,
    plan: SweepPlan,
    results: pd.DataFrame,
    best: pd.DataFrame,
    evaluations: list[SegmentEvaluation],
    snapshot: Snapshot,
) -> dict[str, Any]:
    """Write the HTML report and one tracking run (a summary and the top trials, not a run per
    trial); returns the sweep's summary, with where the report is."""
    import tempfile
    from pathlib import Path

    from pipelines.adapters.factory import tracker
    from pipelines.sweep.report import render_sweep_report

    trained = float(results["seconds"].sum())
    lifts = [e.winner_score - e.global_score for e in evaluations]
    summary: dict[str, Any] = {
        "model_name": plan.model_name,
        "sweep_key": plan.sweep_key,
        "segment_column": plan.segment_column,
        "segments": len(plan.segments),
        "segments_on_global_model": len(plan.fallback),
        "trials": len(results),
        "chunks": len(plan.chunks),
        "training_seconds": round(trained, 1),
        "trials_per_second": round(len(results) / trained, 2) if trained else None,
        "mean_best_valid_score": round(float(best["score"].mean()), 4) if len(best) else None,
        "segments_tested": len(evaluations),
        "segments_where_winner_beats_global": sum(lift > 0 for lift in lifts),
        "mean_test_lift_over_global": round(float(np.mean(lifts)), 4) if lifts else None,
        "results_table": f"{sweeps_table(plan.model_name)}@{snapshot.snapshot_id}",
    }
    page = render_sweep_report(plan, results, best, evaluations, summary)
    summary["report"] = ctx.platform.artifacts.put_bytes(f"{plan.prefix}/report.html", page.encode())
    track = tracker(ctx.platform.contract.tracking, f"{ctx.platform.environment}-{plan.model_name}")
    with track.run(run_name=f"sweep-{plan.sweep_key}") as run_id, tempfile.TemporaryDirectory() as scratch:
        summary["tracking_run_id"] = run_id
        track.log_params(
            {
                "kind": "sweep",
                "sweep_key": plan.sweep_key,
                "segment_column": plan.segment_column,
                "trial_settings": len(plan.trials),
                "chunk_trials": max(chunk.trials for chunk in plan.chunks),
            }
        )
        track.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, int | float)})
        report = Path(scratch) / "sweep_report.html"
        report.write_text(page)
        top = Path(scratch) / "top_trials.csv"
        results.sort_values("score", ascending=False).head(100).to_csv(top, index=False)
        track.log_artifact(report)
        track.log_artifact(top)
    return summary
