"""The training pipeline's steps as plain functions: the Prefect flow wraps each one in a task,
and the benchmark calls them directly to measure orchestration overhead."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.contract_source import load_platform_contract
from mlops.gitinfo import code_version
from mlops.settings import EnvironmentSettings, load_settings
from models.bundle import BUNDLE_FILES, ModelBundle
from models.run_spec import TrainingRunSpec
from pipelines.adapters.factory import read_uri
from pipelines.errors import NoCuratedData
from pipelines.evaluation.gates import Evaluation, evaluate
from pipelines.evaluation.report import render_report
from pipelines.faults import fault_point
from pipelines.features.compute import compute_window_features
from pipelines.features.store import FeatureStore
from pipelines.lake.ingest import IngestResult, curated_table, ingest_file
from pipelines.platform import Platform, connect
from pipelines.ports import ApprovalStatus, MetricDatum, ModelCandidate, ModelVersion
from pipelines.training.dataset import build_spine, temporal_split
from pipelines.usecase import UseCase, load_usecase

log = logging.getLogger(__name__)


SMOKE_ROWS = 5
SMOKE_FILE = "smoke.json"


@dataclass(frozen=True)
class PipelineContext:
    settings: EnvironmentSettings
    usecase: UseCase
    platform: Platform

    @property
    def features(self) -> FeatureStore:
        return FeatureStore(
            self.platform.lake,
            self.platform.online_store,
            self.platform.contract.feature_store.offline_namespace,
        )


@dataclass(frozen=True)
class FeatureBuild:
    curated_snapshot_id: int
    features_snapshot_id: int
    feature_rows: int
    materialized_entities: int
    reused: bool


@dataclass(frozen=True)
class PreparedRun:
    run_key: str
    spec_uri: str
    test_key: str
    rows: dict[str, int]
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationSummary:
    passed: bool
    overall: dict[str, float]
    gates: list[dict[str, Any]]
    report_uri: str
    champion_version: int | None


def open_environment(env: str) -> PipelineContext:
    """Settings, use case and platform of an environment (reads the contract)."""
    settings = load_settings(env)
    usecase = load_usecase(settings.pipeline.usecase_path())
    return PipelineContext(settings, usecase, connect(load_platform_contract(settings)))


def ingest_step(ctx: PipelineContext, source: Path) -> IngestResult:
    return ingest_file(ctx.platform, ctx.usecase.dataset, source)


def feature_step(ctx: PipelineContext) -> FeatureBuild:
    """Compute the offline features from the current curated snapshot (reused when unchanged),
    then materialize each entity's latest values online."""
    dataset, view = ctx.usecase.dataset, ctx.usecase.features
    curated = ctx.platform.lake.current_snapshot(curated_table(dataset))
    if curated is None:
        raise NoCuratedData(
            f"the lake has no curated {dataset.name} data yet: ingest a batch first (mlops ingest)"
        )
    existing = ctx.features.current_for(view, curated.snapshot_id)
    if existing is not None:
        features = ctx.features.read_offline(view, existing.snapshot_id)
        snapshot, reused = existing, True
    else:
        events = ctx.platform.lake.read(curated_table(dataset), snapshot_id=curated.snapshot_id).to_pandas()
        features = compute_window_features(events, dataset, view)
        snapshot, reused = ctx.features.write_offline(view, features, curated.snapshot_id), False
    materialized = ctx.features.materialize(view, features, dataset.entity_key)
    log.info(
        "features: %d rows (%s), %d entities online",
        len(features),
        "reused" if reused else "computed",
        materialized,
    )
    return FeatureBuild(curated.snapshot_id, snapshot.snapshot_id, len(features), materialized, reused)


def _run_key(build: FeatureBuild, ctx: PipelineContext, commit: str) -> str:
    identity = {
        "curated": build.curated_snapshot_id,
        "features": build.features_snapshot_id,
        "training": ctx.settings.pipeline.training.model_dump(mode="json"),
        "split": ctx.settings.pipeline.split.model_dump(mode="json"),
        "model": ctx.settings.pipeline.model_name,
        "commit": commit,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def prepare_step(ctx: PipelineContext, build: FeatureBuild) -> PreparedRun:
    """Build the point-in-time training set, split it by time and write the run spec."""
    dataset, view, pipeline = ctx.usecase.dataset, ctx.usecase.features, ctx.settings.pipeline
    code = code_version()
    run_key = _run_key(build, ctx, code.commit)
    prefix = f"runs/{pipeline.model_name}/{run_key}"
    store = ctx.platform.artifacts
    curated = ctx.platform.lake.read(
        curated_table(dataset), snapshot_id=build.curated_snapshot_id
    ).to_pandas()
    spine = build_spine(curated, ctx.usecase)
    training_set = ctx.features.training_set(
        view, spine, dataset.entity_key, dataset.event_time, build.features_snapshot_id
    )
    splits = temporal_split(
        training_set, dataset.event_time, pipeline.split.valid_fraction, pipeline.split.test_fraction
    )
    keys = {name: f"{prefix}/data/{name}.parquet" for name in splits}
    for name, frame in splits.items():
        if not store.exists(keys[name]):
            store.put_bytes(keys[name], _parquet(frame))
    spec = TrainingRunSpec(
        run_key=run_key,
        model_name=pipeline.model_name,
        experiment=f"{ctx.platform.environment}-{pipeline.model_name}",
        artifacts=ctx.platform.contract.artifacts,
        tracking=ctx.platform.contract.tracking,
        run_prefix=prefix,
        train_key=keys["train"],
        valid_key=keys["valid"],
        label=dataset.label,
        numeric_features=view.numeric_features(),
        categorical_features={c: dataset.categorical_vocabulary(c) for c in view.categorical_features()},
        training=pipeline.training,
        tags={"environment": ctx.platform.environment, "git_commit": code.commit},
    )
    spec_uri = store.put_bytes(f"{prefix}/run_spec.json", spec.model_dump_json(indent=2).encode())
    rows = {name: len(frame) for name, frame in splits.items()}
    lineage: dict[str, Any] = {
        "run_key": run_key,
        "tables": {
            curated_table(dataset): build.curated_snapshot_id,
            ctx.features.offline_table(view): build.features_snapshot_id,
        },
        "git_commit": code.commit,
        "git_dirty": code.dirty,
        "spec_uri": spec_uri,
        "rows": rows,
    }
    return PreparedRun(run_key, spec_uri, keys["test"], rows, lineage)


def train_step(ctx: PipelineContext, prepared: PreparedRun) -> dict[str, Any]:
    """Run the training job on the environment's compute; returns the job's result.json."""
    job = ctx.platform.compute.run_training(prepared.spec_uri)
    prefix = f"runs/{ctx.settings.pipeline.model_name}/{prepared.run_key}"
    result: dict[str, Any] = json.loads(ctx.platform.artifacts.get_bytes(f"{prefix}/result.json"))
    result["job_id"] = job.job_id
    return result


def bundle_files(uri: str) -> dict[str, bytes]:
    """The files of the model bundle in a directory URI (file:// locally, s3:// in AWS)."""
    return {name: read_uri(f"{uri.rstrip('/')}/{name}") for name in BUNDLE_FILES}


def load_bundle(uri: str) -> ModelBundle:
    """A model bundle from a directory URI (file:// locally, s3:// in AWS)."""
    return ModelBundle.from_files(bundle_files(uri))


def evaluate_step(ctx: PipelineContext, prepared: PreparedRun, result: dict[str, Any]) -> EvaluationSummary:
    """Score the candidate (and the champion, on the same rows), apply the gates, write the report."""
    pipeline, label = ctx.settings.pipeline, ctx.usecase.dataset.label
    test = pd.read_parquet(io.BytesIO(ctx.platform.artifacts.get_bytes(prepared.test_key)))
    scores = load_bundle(result["model_uri"]).predict_proba(test)
    champion = ctx.platform.registry.champion(pipeline.model_name)
    champion_scores, champion_version = None, None
    if champion is not None and champion.run_key != prepared.run_key:
        champion_scores = load_bundle(champion.artifact_uri).predict_proba(test)
        champion_version = champion.version
    evaluation: Evaluation = evaluate(
        test,
        label,
        scores,
        pipeline.gates,
        champion_scores,
        champion_version,
    )
    lineage = {
        **prepared.lineage,
        "training_curves": result["curves_uri"],
        "tracking_run_id": result["tracking_run_id"],
    }
    page = render_report(
        f"Evaluation of {pipeline.model_name} · run {prepared.run_key}",
        evaluation,
        test[label].to_numpy(),
        scores,
        champion_scores,
        pipeline.gates.min_slice_auc,
        lineage,
    )
    prefix = f"runs/{pipeline.model_name}/{prepared.run_key}"
    report_uri = ctx.platform.artifacts.put_bytes(f"{prefix}/evaluation.html", page.encode())
    # The deployment's smoke test: these rows must get exactly these answers from the deployed model.
    smoke_rows = test.head(SMOKE_ROWS)
    smoke = {
        "rows": json.loads(smoke_rows.to_json(orient="records")),
        "expected": [float(s) for s in scores[:SMOKE_ROWS]],
    }
    ctx.platform.artifacts.put_bytes(f"{prefix}/{SMOKE_FILE}", json.dumps(smoke).encode())
    gates = [asdict(g) for g in evaluation.gates]
    summary = EvaluationSummary(
        evaluation.passed, evaluation.overall, gates, report_uri, evaluation.champion_version
    )
    ctx.platform.artifacts.put_bytes(
        f"{prefix}/evaluation.json", json.dumps(asdict(summary), indent=2, default=str).encode()
    )
    return summary


def register_step(
    ctx: PipelineContext, prepared: PreparedRun, result: dict[str, Any], evaluation: EvaluationSummary
) -> ModelVersion:
    """Register the run (once per run key) as pending, then approve or reject it by the gates."""
    pipeline = ctx.settings.pipeline
    candidate = ModelCandidate(
        model_name=pipeline.model_name,
        run_key=prepared.run_key,
        artifact_uri=result["model_uri"],
        metrics={k: float(v) for k, v in evaluation.overall.items()},
        parameters=pipeline.training.model_dump(mode="json"),
        lineage={
            **prepared.lineage,
            "tracking_run_id": result["tracking_run_id"],
            "evaluation_report": evaluation.report_uri,
            "training_curves": result["curves_uri"],
        },
    )
    version = ctx.platform.registry.register(candidate)
    fault_point("register.after-pending")
    if version.status != ApprovalStatus.PENDING:  # decided by an earlier run (a rerun changes nothing)
        return version
    if evaluation.passed:
        return ctx.platform.registry.set_status(
            version.model_name, version.version, ApprovalStatus.APPROVED, "all gates passed"
        )
    failed = ", ".join(g["name"] for g in evaluation.gates if not g["passed"])
    return ctx.platform.registry.set_status(
        version.model_name, version.version, ApprovalStatus.REJECTED, f"failed gates: {failed}"
    )


def publish_metrics_step(ctx: PipelineContext, version: ModelVersion, evaluation: EvaluationSummary) -> int:
    dims = {"environment": ctx.platform.environment, "model": version.model_name}
    data = [
        MetricDatum(f"evaluation_{name}", value, dims)
        for name, value in evaluation.overall.items()
        if name != "rows"
    ]
    data.append(MetricDatum("gates_passed", 1.0 if evaluation.passed else 0.0, dims))
    return ctx.platform.metrics.put(data)
