"""The deployment pipeline's steps as plain functions (the Prefect flow wraps them)."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from pipelines.deployment.guarded import CanaryPolicy, DeploymentOutcome
from pipelines.experiments.state import read_experiment
from pipelines.onnx_model import load_for_scoring
from pipelines.ports import ApprovalStatus, MetricDatum, ModelVersion
from pipelines.serving.capture import capture_table
from pipelines.serving.handler import InferenceHandler
from pipelines.training.steps import SMOKE_FILE, PipelineContext


class NotDeployable(Exception):
    """The requested version is not approved (or there is no approved version)."""


def handler_for(ctx: PipelineContext, version: ModelVersion) -> InferenceHandler:
    bundle, scorer = load_for_scoring(version.artifact_uri)
    return InferenceHandler(bundle, ctx.usecase, ctx.platform.online_store, scorer)


def candidate_version(ctx: PipelineContext, version: int | None) -> ModelVersion:
    model = ctx.model_name
    chosen = (
        ctx.platform.registry.champion(model)
        if version is None
        else ctx.platform.registry.get(model, version)
    )
    if chosen is None:
        raise NotDeployable(_why_nothing_is_approved(ctx, model))
    if chosen.status != ApprovalStatus.APPROVED:
        reason = f" ({chosen.status_reason})" if chosen.status_reason else ""
        raise NotDeployable(
            f"{model} v{chosen.version} is {chosen.status.value}{reason}, not Approved: "
            "only approved versions are deployed"
        )
    return chosen


def _why_nothing_is_approved(ctx: PipelineContext, model: str) -> str:
    """No champion: say whether nothing was trained, or what happened to the latest version."""
    versions = ctx.platform.registry.versions(model)
    if not versions:
        return f"{model} has no version yet: run the training pipeline first (mlops run training)"
    latest = max(versions, key=lambda v: v.version)
    reason = f": {latest.status_reason}" if latest.status_reason else ""
    report = latest.lineage.get("evaluation_report")
    return (
        f"{model} has no approved version to deploy; the latest, v{latest.version}, is "
        f"{latest.status.value}{reason}" + (f" (evaluation report: {report})" if report else "")
    )


def _run_prefix(version: ModelVersion) -> str:
    return f"runs/{version.model_name}/{version.run_key}"


def smoke_case(ctx: PipelineContext, version: ModelVersion) -> tuple[pd.DataFrame, list[float]]:
    key = f"{_run_prefix(version)}/{SMOKE_FILE}"
    if not ctx.platform.artifacts.exists(key):
        raise NotDeployable(
            f"{version.model_name} v{version.version} has no smoke test case ({key}): re-run its training pipeline"
        )
    smoke = json.loads(ctx.platform.artifacts.get_bytes(key))
    return pd.DataFrame(smoke["rows"]), [float(x) for x in smoke["expected"]]


def replay_traffic(ctx: PipelineContext, version: ModelVersion, rows: int = 2_000) -> pd.DataFrame:
    """Recent captured requests if there are any, else the candidate's own test rows."""
    table = capture_table(version.model_name)
    if ctx.platform.lake.current_snapshot(table) is not None:
        captured = ctx.platform.lake.read(table).to_pandas()
        return captured.tail(rows)
    test = pd.read_parquet(
        io.BytesIO(ctx.platform.artifacts.get_bytes(f"{_run_prefix(version)}/data/test.parquet"))
    )
    return test.head(rows)


def deploy_step(
    ctx: PipelineContext, version: int | None = None, policy: CanaryPolicy = CanaryPolicy()
) -> DeploymentOutcome:
    candidate = candidate_version(ctx, version)
    running = read_experiment(ctx.platform.artifacts, candidate.model_name)
    if running is not None and running.status == "running":
        # A deployment replaces the endpoint's variants: it would end the split under a running
        # experiment (and SageMaker's guarded update refuses a change of variant names).
        return DeploymentOutcome(
            candidate.model_name,
            candidate.version,
            "refused",
            f"an experiment is running on {candidate.model_name} (v{running.champion} vs v{running.challenger}): "
            "stop it first (mlops experiment stop)",
        )
    handlers: dict[int, InferenceHandler] = {}

    def handler_of(v: ModelVersion) -> InferenceHandler:
        """Each version's bundle is read once per deployment."""
        if v.version not in handlers:
            handlers[v.version] = handler_for(ctx, v)
        return handlers[v.version]

    features = [ctx.usecase.dataset.entity_key, *handler_of(candidate).bundle.feature_names]
    traffic = replay_traffic(ctx, candidate)[features]
    outcome = ctx.platform.deployer.deploy(
        candidate,
        handler_of,
        ctx.platform.registry,
        ctx.platform.artifacts,
        traffic,
        smoke_case(ctx, candidate),
        policy,
    )
    dims = {"environment": ctx.platform.environment, "model": candidate.model_name}
    ctx.platform.metrics.put([MetricDatum(f"deployment_{outcome.decision}", 1.0, dims, "Count")])
    return outcome


def deployment_summary(outcome: DeploymentOutcome) -> dict[str, Any]:
    return {
        "model": outcome.model_name,
        "version": outcome.version,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "stats": outcome.stats,
    }
