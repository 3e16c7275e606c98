"""The deployment flow: the registry's approved model to the endpoint, guarded (smoke, canary, rollback)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.deployment import steps as deploy_steps
from pipelines.training import steps

deploy = task(name="guarded-deploy", cache_policy=NO_CACHE)(deploy_steps.deploy_step)


@flow(name="deployment", log_prints=True)
def deployment_flow(env: str = "local", version: int | None = None) -> dict[str, Any]:
    """Deploy `version` (default: the champion) behind the live model with a canary, or roll back."""
    ctx = steps.open_environment(env)
    outcome = deploy(ctx, version)
    summary = deploy_steps.deployment_summary(outcome)
    create_markdown_artifact(
        key="deployment-summary",
        markdown=f"# Deployment of {outcome.model_name} v{outcome.version}\n\n**{outcome.decision}** {outcome.reason}",
    )
    return summary
