"""The monitoring pipeline's steps: compare captured traffic with the live model's training data."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from pipelines.deployment.endpoint import read_state
from pipelines.evaluation.importance import IMPORTANCE_FILE, overall_importance
from pipelines.monitoring.captured import NothingToMonitor, captured_traffic
from pipelines.monitoring.drift import DriftImpact, DriftPolicy, DriftReport, compare, drift_impact
from pipelines.monitoring.report import render_drift_report
from pipelines.ports import MetricDatum
from pipelines.training.bundles import load_bundle
from pipelines.training.steps import PipelineContext

PREDICTION = "prediction"


@dataclass(frozen=True)
class MonitoringResult:
    model_name: str
    version: int
    status: str
    max_psi: float
    alerts: list[str]
    report_uri: str
    current_rows: int
    drift_that_matters: list[str] = field(default_factory=list)  # most impact on the model first


def monitor_step(
    ctx: PipelineContext, policy: DriftPolicy = DriftPolicy(), recent_rows: int = 50_000
) -> MonitoringResult:
    """Drift of the recent captured inputs and predictions against the live model's training split."""
    model = ctx.model_name
    live = read_state(ctx.platform.artifacts, model).live_version()
    if live is None:
        raise NothingToMonitor(f"no version of {model} is deployed: run `mlops deploy` first")
    version = ctx.platform.registry.get(model, live)
    table = captured_traffic(ctx)
    current = ctx.platform.lake.read(table).to_pandas().tail(recent_rows)
    baseline = pd.read_parquet(
        io.BytesIO(ctx.platform.artifacts.get_bytes(f"runs/{model}/{version.run_key}/data/train.parquet"))
    )
    baseline[PREDICTION] = load_bundle(version.artifact_uri).predict(baseline)
    usecase = ctx.usecase
    report: DriftReport = compare(
        baseline, current, [*usecase.numeric_features(), PREDICTION], usecase.categorical_features(), policy
    )

    impacts = _impacts(ctx, f"runs/{model}/{version.run_key}/{IMPORTANCE_FILE}", report, policy)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    page = render_drift_report(
        f"Drift of {model} v{version.version}", report, baseline, current, policy, impacts
    )
    report_uri = ctx.platform.artifacts.put_bytes(f"monitoring/{model}/{stamp}/drift.html", page.encode())
    dims = {"environment": ctx.platform.environment, "model": model}
    data = [
        MetricDatum("drift_max_psi", report.max_psi, dims),
        MetricDatum("drift_alert_features", float(len(report.alerts())), dims, "Count"),
    ]
    data += [
        MetricDatum("feature_drift", f.score, {**dims, "feature": f.feature})
        for f in report.features
        if f.score == f.score
    ]
    data += [
        MetricDatum("feature_drift_impact", i.impact, {**dims, "feature": i.feature}) for i in impacts or []
    ]
    ctx.platform.metrics.put(data)
    return MonitoringResult(
        model,
        version.version,
        report.status.value,
        report.max_psi,
        [f.feature for f in report.alerts()],
        report_uri,
        len(current),
        [i.feature for i in impacts or [] if i.impact > 0][:3],
    )


def _impacts(
    ctx: PipelineContext, importance_key: str, report: DriftReport, policy: DriftPolicy
) -> list[DriftImpact] | None:
    """Drift ranked by what it does to the model, from the live version's permutation importance
    (None for a version trained before importance was measured)."""
    if not ctx.platform.artifacts.exists(importance_key):
        return None
    stored = json.loads(ctx.platform.artifacts.get_bytes(importance_key))
    return drift_impact(report, {i.feature: i.drop for i in overall_importance(stored)}, policy)
