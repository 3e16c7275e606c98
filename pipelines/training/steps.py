"""The training pipeline's steps as plain functions: the Prefect flow wraps each one in a task,
and the benchmark calls them directly to measure orchestration overhead."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError

from mlops.contract_source import load_platform_contract
from mlops.gitinfo import code_version
from mlops.settings import EnvironmentSettings, SettingsError, TrainingSettings, load_settings
from mlops.validation_errors import describe_validation_error
from models.bundle import ModelBundle
from pipelines.errors import NoCuratedData
from pipelines.evaluation.gates import Evaluation, evaluate
from pipelines.evaluation.importance import IMPORTANCE_FILE, feature_importance
from pipelines.evaluation.report import render_report
from pipelines.faults import fault_point
from pipelines.features.compute import compute_window_features
from pipelines.features.engine import engine_feature_batches, total_rows
from pipelines.features.incremental import incremental_features, source_columns
from pipelines.features.store import FeatureStore
from pipelines.lake.ingest import IngestResult, curated_table, ingest_file
from pipelines.parquet_files import read_columns
from pipelines.platform import Platform, connect
from pipelines.ports import (
    ApprovalStatus,
    ArtifactStore,
    MetricDatum,
    ModelCandidate,
    ModelVersion,
    Snapshot,
)
from pipelines.training.bundles import load_bundle
from pipelines.training.dataset import spine_columns
from pipelines.training.run_spec import TrainingRunSpec, architecture_of
from pipelines.training.training_set import SPLITS, write_splits
from pipelines.training.warm_start import warm_start_source
from pipelines.usecase import UseCase, UseCaseError, load_usecase

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


SMOKE_ROWS = 5
SMOKE_FILE = "smoke.json"


@dataclass(frozen=True)
class PipelineContext:
    settings: EnvironmentSettings
    usecase: UseCase
    platform: Platform

    @property
    def model_name(self) -> str:
        """The registry name: the environment's override, else the use case's."""
        return self.settings.pipeline.model_name or self.usecase.model_name

    @property
    def slice_columns(self) -> list[str]:
        """Slices evaluated and gated: the use case's, unless the environment overrides them."""
        override = self.settings.pipeline.gates.slice_columns
        return list(override) if override is not None else self.usecase.slice_columns()

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
    feature_rows: int  # rows written (or read, when reused) by this step
    materialized_entities: int
    mode: str  # reused | appended | computed


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
    check_slice_override(settings, usecase)
    return PipelineContext(settings, usecase, connect(load_platform_contract(settings)))


def check_slice_override(settings: EnvironmentSettings, usecase: UseCase) -> None:
    """An environment's slice columns must be columns of its use case (never dropped quietly)."""
    override = settings.pipeline.gates.slice_columns or ()
    unknown = [c for c in override if c not in usecase.dataset.columns]
    if unknown:
        raise UseCaseError(
            f"gates.slice_columns of environment {settings.name!r}: {unknown} are not columns of "
            f"{settings.pipeline.usecase} (its columns: {', '.join(usecase.dataset.columns)})"
        )


def ingest_step(ctx: PipelineContext, source: Path) -> IngestResult:
    return ingest_file(ctx.platform, ctx.usecase.dataset, source, ctx.settings.pipeline.ingest.chunk_rows)


def feature_step(ctx: PipelineContext) -> FeatureBuild:
    """Bring the offline features up to the current curated snapshot, then materialize the latest
    values online: reused when current, appended for new events when that is exact (see
    `pipelines.features.incremental`), recomputed from all of curated otherwise."""
    dataset, view = ctx.usecase.dataset, ctx.usecase.features
    curated = ctx.platform.lake.current_snapshot(curated_table(dataset))
    if curated is None:
        raise NoCuratedData(
            f"the lake has no curated {dataset.name} data yet: ingest a batch first (mlops ingest)"
        )
    existing = ctx.features.current_for(view, curated.snapshot_id)
    if existing is not None:
        latest = ctx.features.latest_offline(view, existing.snapshot_id, dataset.entity_key)
        snapshot, mode = existing, "reused"
        features = _Features(total_rows(existing), latest)
    else:
        source = ctx.features.source_of_current(view)
        increment = (
            incremental_features(
                ctx.platform.lake, ctx.usecase, curated_table(dataset), source, curated.snapshot_id
            )
            if source is not None
            else None
        )
        if increment is not None and increment.rows is not None:
            features = _Features.of(increment.rows)
            log.info(
                "features: %d new events, computed over %d rows of their entities' history",
                increment.new_events,
                increment.history_rows,
            )
            snapshot = ctx.features.append_offline(view, increment.rows, curated.snapshot_id)
            mode = "appended"
        else:
            if increment is not None:
                log.info("features: recomputing everything (%s)", increment.reason)
            snapshot, features = _recompute(ctx, curated)
            mode = "computed"
    materialized = ctx.features.materialize(view, features.latest, dataset.entity_key)
    log.info("features: %d rows (%s), %d entities online", features.rows, mode, materialized)
    return FeatureBuild(curated.snapshot_id, snapshot.snapshot_id, features.rows, materialized, mode)


@dataclass(frozen=True)
class _Features:
    """Feature rows a step wrote or read: how many, and what to materialize online (each entity's
    latest row, or rows it is picked from)."""

    rows: int
    latest: pd.DataFrame | pa.Table

    @classmethod
    def of(cls, rows: pd.DataFrame | pa.Table) -> _Features:
        return cls(len(rows), rows)


def _recompute(ctx: PipelineContext, curated: Snapshot) -> tuple[Snapshot, _Features]:
    """The whole feature table, written over the offline table: on the environment's query engine
    from the configured size, streamed from the engine to the table's files; in this process below
    it (the same features either way: tests/usecases/test_feature_sql.py)."""
    dataset, view = ctx.usecase.dataset, ctx.usecase.features
    table = curated_table(dataset)
    rows, threshold = total_rows(curated), ctx.settings.pipeline.features.query_engine_from_rows
    if rows >= threshold:
        log.info(
            "features: %d curated rows (engine from %d): computed by the %s query engine",
            rows,
            threshold,
            ctx.platform.query.dialect,
        )
        batches = engine_feature_batches(ctx.platform.query, ctx.usecase, table, curated.snapshot_id)
        snapshot, written, latest = ctx.features.write_offline_stream(
            view, batches, curated.snapshot_id, dataset.entity_key
        )
        return snapshot, _Features(written, latest)
    events = ctx.platform.lake.read(
        table, columns=source_columns(ctx.usecase), snapshot_id=curated.snapshot_id
    ).to_pandas()
    features = compute_window_features(events, ctx.usecase)
    return ctx.features.write_offline(view, features, curated.snapshot_id), _Features.of(features)


def _run_key(build: FeatureBuild, ctx: PipelineContext, commit: str, warm_start_uri: str | None) -> str:
    identity = {
        "warm_start": warm_start_uri,  # a run continued from another champion is another run
        "curated": build.curated_snapshot_id,
        "features": build.features_snapshot_id,
        # The ranks are left out: a run killed with N ranks resumes with any number of them.
        "training": ctx.settings.pipeline.training.model_dump(mode="json", exclude={"distributed"}),
        "split": ctx.settings.pipeline.split.model_dump(mode="json", exclude={"memory_limit"}),
        "model": ctx.model_name,
        "usecase": ctx.usecase.signature(),
        "horizon": ctx.usecase.task.label_horizon_days,
        "slices": ctx.slice_columns,
        "commit": commit,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


ROWS_FILE = "rows.json"  # written after the splits: a run key's training set is complete when it exists


def _written_splits(store: ArtifactStore, keys: dict[str, str], prefix: str) -> dict[str, int] | None:
    """The row counts of a run key's training set when it is already written, whole: the run key
    names the snapshots, settings, use case and code the splits are made of, so they would come
    out the same (a rerun of a current run skips the point-in-time join)."""
    rows_key = f"{prefix}/data/{ROWS_FILE}"
    if not store.exists(rows_key) or not all(store.exists(key) for key in keys.values()):
        return None
    rows: dict[str, int] = json.loads(store.get_bytes(rows_key))
    return rows


def _write_training_set(ctx: PipelineContext, build: FeatureBuild, keys: dict[str, str]) -> dict[str, int]:
    """Join, split and store the training set of `build`; returns the rows of each split."""
    dataset, split, store = ctx.usecase.dataset, ctx.settings.pipeline.split, ctx.platform.artifacts
    view = ctx.usecase.features
    with tempfile.TemporaryDirectory(prefix="mlops-training-set-") as workdir:
        files = write_splits(
            ctx.platform.lake.scan(
                curated_table(dataset),
                spine_columns(ctx.usecase, ctx.slice_columns),
                build.curated_snapshot_id,
            ),
            ctx.platform.lake.scan(ctx.features.offline_table(view), None, build.features_snapshot_id),
            ctx.usecase,
            split.valid_fraction,
            split.test_fraction,
            Path(workdir),
            split.memory_limit,
        )
        for name in SPLITS:
            if not store.exists(keys[name]):
                store.put_file(keys[name], files.paths[name])
    return files.rows


def prepare_step(ctx: PipelineContext, build: FeatureBuild, processes: int | None = None) -> PreparedRun:
    """Build the point-in-time training set, split it by time and write the run spec.

    `processes` overrides the environment's training.distributed.processes_per_node for this run.
    """
    dataset, view, pipeline = ctx.usecase.dataset, ctx.usecase.features, ctx.settings.pipeline
    code = code_version()
    training = training_settings(pipeline.training, processes)
    warm_start_uri = (
        warm_start_source(
            ctx.platform.registry.champion(ctx.model_name),
            ctx.usecase.numeric_features(),
            list(ctx.usecase.categorical_vocabularies()),
            ctx.usecase.task.type,
            architecture_of(training),
        )
        if training.warm_start
        else None
    )
    run_key = _run_key(build, ctx, code.commit, warm_start_uri)
    prefix = f"runs/{ctx.model_name}/{run_key}"
    store = ctx.platform.artifacts
    keys = {name: f"{prefix}/data/{name}.parquet" for name in SPLITS}
    rows = _written_splits(store, keys, prefix)
    if rows is None:  # not yet written (or a run killed before it finished writing them)
        rows = _write_training_set(ctx, build, keys)
        store.put_bytes(f"{prefix}/data/{ROWS_FILE}", json.dumps(rows).encode())
    spec = TrainingRunSpec(
        run_key=run_key,
        model_name=ctx.model_name,
        experiment=f"{ctx.platform.environment}-{ctx.model_name}",
        artifacts=ctx.platform.contract.artifacts,
        tracking=ctx.platform.contract.tracking,
        run_prefix=prefix,
        train_key=keys["train"],
        valid_key=keys["valid"],
        label=dataset.label,
        task=ctx.usecase.task.type,
        numeric_features=ctx.usecase.numeric_features(),
        categorical_features=ctx.usecase.categorical_vocabularies(),
        training=training,
        warm_start_uri=warm_start_uri,
        tags={"environment": ctx.platform.environment, "git_commit": code.commit},
    )
    spec_uri = store.put_bytes(f"{prefix}/run_spec.json", spec.model_dump_json(indent=2).encode())
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
        "usecase": str(ctx.settings.pipeline.usecase),
        "usecase_signature": ctx.usecase.signature(),
        "warm_start_from": warm_start_uri,
    }
    return PreparedRun(run_key, spec_uri, keys["test"], rows, lineage)


def training_settings(settings: TrainingSettings, processes: int | None) -> TrainingSettings:
    """The environment's training settings, with the ranks per node overridden when asked."""
    if processes is None:
        return settings
    layout = settings.distributed.model_copy(update={"processes_per_node": processes})
    try:
        return TrainingSettings.model_validate({**settings.model_dump(), "distributed": layout.model_dump()})
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, "invalid training settings")) from exc


def train_step(ctx: PipelineContext, prepared: PreparedRun) -> dict[str, Any]:
    """Run the training job on the environment's compute; returns the job's result.json."""
    job = ctx.platform.compute.run_training(prepared.spec_uri)
    prefix = f"runs/{ctx.model_name}/{prepared.run_key}"
    result: dict[str, Any] = json.loads(ctx.platform.artifacts.get_bytes(f"{prefix}/result.json"))
    result["job_id"] = job.job_id
    return result


def comparable(
    champion: ModelVersion, champion_bundle: ModelBundle, candidate: ModelBundle, ctx: PipelineContext
) -> str:
    """Why the champion cannot be compared with the candidate ("" when it can)."""
    signature = champion.lineage.get("usecase_signature")
    if signature is not None and signature != ctx.usecase.signature():
        return f"champion v{champion.version} was trained for another use case ({champion.lineage.get('usecase', '?')})"
    if champion_bundle.task != candidate.task or champion_bundle.label != candidate.label:
        return f"champion v{champion.version} predicts {champion_bundle.label} ({champion_bundle.task})"
    if champion_bundle.feature_names != candidate.feature_names:
        return f"champion v{champion.version} uses another feature set"
    return ""


def evaluate_step(ctx: PipelineContext, prepared: PreparedRun, result: dict[str, Any]) -> EvaluationSummary:
    """Score the candidate (and a comparable champion, on the same rows), apply the gates, write the report."""
    pipeline, label = ctx.settings.pipeline, ctx.usecase.dataset.label
    candidate = load_bundle(result["model_uri"])
    entity_key = ctx.usecase.dataset.entity_key
    with tempfile.TemporaryDirectory(prefix="mlops-evaluation-") as scratch:
        path = ctx.platform.artifacts.get_file(prepared.test_key, Path(scratch) / "test.parquet")
        # Keys and times stay on disk: as Python strings they were most of a 7.5 M-row test frame.
        test = read_columns(path, [*candidate.feature_names, label, *ctx.slice_columns])
        smoke_entities = read_columns(path, [entity_key], rows=SMOKE_ROWS)
    scores = candidate.predict(test)
    champion = ctx.platform.registry.champion(ctx.model_name)
    champion_scores, champion_version, skipped = None, None, ""
    if champion is not None and champion.run_key != prepared.run_key:
        champion_bundle = load_bundle(champion.artifact_uri)
        skipped = comparable(champion, champion_bundle, candidate, ctx)
        if not skipped:
            champion_scores = champion_bundle.predict(test)
            champion_version = champion.version
    evaluation: Evaluation = evaluate(
        test,
        label,
        scores,
        pipeline.gates,
        champion_scores,
        champion_version,
        task=candidate.task,
        slice_columns=ctx.slice_columns,
        baseline=candidate.target.baseline,
    )
    if skipped:
        evaluation.notes.append(f"{skipped}: not compared")
        log.warning("%s: not compared", skipped)
    lineage = {
        **prepared.lineage,
        "training_curves": result["curves_uri"],
        "tracking_run_id": result["tracking_run_id"],
    }
    importance = feature_importance(
        candidate, test, label, evaluation, max_rows=pipeline.evaluation.importance_rows
    )
    prefix = f"runs/{ctx.model_name}/{prepared.run_key}"
    ctx.platform.artifacts.put_bytes(f"{prefix}/{IMPORTANCE_FILE}", json.dumps(importance, indent=2).encode())
    gates = pipeline.gates
    page = render_report(
        f"Evaluation of {ctx.model_name} · run {prepared.run_key}",
        evaluation,
        test[label].to_numpy(dtype="float64"),
        scores,
        champion_scores,
        gates.min_slice_auc if candidate.task == "binary" else gates.min_slice_r2,
        lineage,
        label=label,
        importance=importance,
    )
    report_uri = ctx.platform.artifacts.put_bytes(f"{prefix}/evaluation.html", page.encode())
    # The deployment's smoke test: these rows must get exactly these answers from the deployed model.
    smoke_rows = pd.concat(
        [smoke_entities, test[candidate.feature_names].head(SMOKE_ROWS).reset_index(drop=True)], axis=1
    )
    smoke = {
        "rows": json.loads(smoke_rows.to_json(orient="records")),
        "expected": [float(s) for s in scores[:SMOKE_ROWS]],
    }
    ctx.platform.artifacts.put_bytes(f"{prefix}/{SMOKE_FILE}", json.dumps(smoke).encode())
    summary = EvaluationSummary(
        evaluation.passed,
        evaluation.overall,
        [asdict(g) for g in evaluation.gates],
        report_uri,
        evaluation.champion_version,
    )
    ctx.platform.artifacts.put_bytes(
        f"{prefix}/evaluation.json", json.dumps(asdict(summary), indent=2, default=str).encode()
    )
    return summary


def decision(evaluation: EvaluationSummary) -> tuple[ApprovalStatus, str]:
    """The registry status the gates call for, and why."""
    if evaluation.passed:
        return ApprovalStatus.APPROVED, "all gates passed"
    failed = "; ".join(
        f"{g['name']} ({_short(g['observed'])} vs {_short(g['threshold'])})"
        for g in evaluation.gates
        if not g["passed"]
    )
    return ApprovalStatus.REJECTED, f"failed gates: {failed}"


def _short(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def register_step(
    ctx: PipelineContext, prepared: PreparedRun, result: dict[str, Any], evaluation: EvaluationSummary
) -> ModelVersion:
    """Register the run (once per run key) as pending, then approve or reject it by the gates.

    A rerun of a decided run applies today's gates: when they call for another status than the
    recorded one (the gates changed), the new decision is recorded with its reason; otherwise
    nothing changes.
    """
    candidate = ModelCandidate(
        model_name=ctx.model_name,
        run_key=prepared.run_key,
        artifact_uri=result["model_uri"],
        metrics={k: float(v) for k, v in evaluation.overall.items()},
        parameters=ctx.settings.pipeline.training.model_dump(mode="json"),
        lineage={
            **prepared.lineage,
            "tracking_run_id": result["tracking_run_id"],
            "evaluation_report": evaluation.report_uri,
            "training_curves": result["curves_uri"],
        },
    )
    version = ctx.platform.registry.register(candidate)
    retain_training_data(ctx, version)
    fault_point("register.after-pending")
    status, reason = decision(evaluation)
    if version.status == status:
        return version
    if version.status != ApprovalStatus.PENDING:
        reason = f"re-evaluated against the current gates (was {version.status.value}): {reason}"
        log.info("%s v%d: %s", version.model_name, version.version, reason)
    return ctx.platform.registry.set_status(version.model_name, version.version, status, reason)


def retain_training_data(ctx: PipelineContext, version: ModelVersion) -> None:
    """Keep the snapshots every registered version of the model was trained on readable, whatever
    the lake's retention: this version's, and those of versions registered before the lake expired
    snapshots (one commit per table, none when all are kept already)."""
    wanted: dict[str, dict[str, int]] = {}
    for registered in ctx.platform.registry.versions(version.model_name):
        if "promoted_from" in registered.lineage:
            continue  # trained on another environment's lake, which keeps its snapshots
        for table, snapshot_id in registered.lineage.get("tables", {}).items():
            reason = f"model/{registered.model_name}/v{registered.version}"
            wanted.setdefault(table, {})[reason] = int(snapshot_id)
    this = f"model/{version.model_name}/v{version.version}"
    for table, snapshots in wanted.items():
        if ctx.platform.lake.current_snapshot(table) is None:
            continue
        for reason in ctx.platform.lake.retain(table, snapshots):
            level = logging.WARNING if reason == this else logging.DEBUG  # older ones: said when they were
            log.log(level, "%s: its %s snapshot has expired; the lineage still names it", reason, table)


def publish_metrics_step(ctx: PipelineContext, version: ModelVersion, evaluation: EvaluationSummary) -> int:
    dims = {"environment": ctx.platform.environment, "model": version.model_name}
    data = [
        MetricDatum(f"evaluation_{name}", value, dims)
        for name, value in evaluation.overall.items()
        if name != "rows"
    ]
    data.append(MetricDatum("gates_passed", 1.0 if evaluation.passed else 0.0, dims))
    return ctx.platform.metrics.put(data)
