"""The quality flow: live accuracy from late labels; on a degradation, the same retraining event as
drift (deployed training flows subscribe to it), and locally the retraining itself."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.flows.monitoring import request_retraining, retrain_and_redeploy
from pipelines.monitoring.quality_step import quality_step
from pipelines.training import steps

measure = task(name="measure-live-quality", cache_policy=NO_CACHE)(quality_step)


@flow(name="quality", log_prints=True)
def quality_flow(env: str = "local", retrain: bool = True) -> dict[str, Any]:
    """Join captured predictions to the labels that arrived, measure per day, version and slice; on
    a degradation beyond the environment's thresholds, emit the retraining event (and, with
    `retrain`, retrain, gate and redeploy here)."""
    ctx = steps.open_environment(env)
    result = measure(ctx)
    summary: dict[str, Any] = {"quality": asdict(result), "retraining": None, "deployment": None}
    if result.status == "degraded":
        groups = ", ".join(f"v{d['model_version']} {d['group']}" for d in result.degraded)
        print(f"live {result.metric} degraded on {groups}: retraining {result.model_name}")
        request_retraining(env, result.model_name, {"reason": "quality", "degraded": result.degraded})
        if retrain:
            summary.update(retrain_and_redeploy(env))
    create_markdown_artifact(
        key="quality-summary",
        markdown=f"# Live quality of {result.model_name}: {result.status}\n\nlabels: {result.labels}\n\n"
        f"live {result.metric}: {result.live}\n\nreport: {result.report_uri}",
    )
    return summary
