"""The monitoring flow: drift of the captured traffic; on an alert, retrain and redeploy.

Locally the trigger is this flow itself (the retraining runs as a subflow); in AWS the drift metric
it publishes raises the `feature-drift` CloudWatch alarm that `infra/` wires to the alerts topic,
and the training deployment is triggered from there (issue #8 ships the Prefect deployments).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from pipelines.flows.deployment import deployment_flow
from pipelines.flows.training import training_flow
from pipelines.monitoring import steps as monitoring_steps
from pipelines.training import steps

DRIFT_ALERT_EVENT = "mlops.drift.alert"
monitor = task(name="detect-drift", cache_policy=NO_CACHE)(monitoring_steps.monitor_step)


def request_retraining(env: str, model_name: str, payload: dict[str, Any]) -> None:
    """Emit the event deployed training flows subscribe to (prefect.yaml triggers)."""
    emit_event(
        event=DRIFT_ALERT_EVENT,
        resource={"prefect.resource.id": f"mlops.model.{model_name}", "mlops.environment": env},
        payload=payload,
    )


def retrain_and_redeploy(env: str) -> dict[str, Any]:
    """Here and now: train, gate, and deploy the new version if it is approved."""
    retraining = training_flow(env=env)
    deployment = deployment_flow(env=env) if retraining["status"] == "Approved" else None
    return {"retraining": retraining, "deployment": deployment}


@flow(name="monitoring", log_prints=True)
def monitoring_flow(env: str = "local", retrain: bool = True) -> dict[str, Any]:
    """Compare recent traffic with the training baseline; on a drift alert retrain, gate and redeploy."""
    ctx = steps.open_environment(env)
    result = monitor(ctx)
    summary: dict[str, Any] = {"drift": asdict(result), "retraining": None, "deployment": None}
    if result.status == "alert":
        request_retraining(
            env,
            result.model_name,
            {"version": result.version, "max_psi": result.max_psi, "alerts": result.alerts},
        )
    if result.status == "alert" and retrain:
        print(f"drift alert on {', '.join(result.alerts)}: retraining {result.model_name}")
        summary.update(retrain_and_redeploy(env))
    create_markdown_artifact(
        key="drift-summary",
        markdown=f"# Drift of {result.model_name} v{result.version}: {result.status}\n\nmax PSI {result.max_psi:.3f}; "
        f"alerts: {', '.join(result.alerts) or 'none'}\n\nreport: {result.report_uri}",
    )
    return summary
