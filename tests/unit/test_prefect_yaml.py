"""prefect.yaml: every deployment names a real flow and its environment's work pool."""

from __future__ import annotations

import importlib

import pytest
import yaml
from prefect.flows import Flow

from infra.components.orchestrator import work_pool_name
from mlops.bootstrap import local_contract
from mlops.paths import PACKAGE_ROOT
from mlops.settings import load_settings
from pipelines.flows.monitoring import DRIFT_ALERT_EVENT

DEPLOYMENTS = yaml.safe_load((PACKAGE_ROOT / "prefect.yaml").read_text())["deployments"]
ENVIRONMENTS = ("local", "dev", "staging", "prod")


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_is_a_flow(deployment: dict) -> None:
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert isinstance(getattr(module, name), Flow)


def _pool(env: str) -> str:
    return (
        local_contract(load_settings(env)).orchestrator.work_pool if env == "local" else work_pool_name(env)
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_trains_deploys_and_monitors_on_its_own_pool(env: str) -> None:
    mine = {
        d["name"]: d
        for d in DEPLOYMENTS
        if d["name"].endswith(f"-{env}") and not d["name"].startswith("promotion")
    }
    assert set(mine) == {
        f"training-{env}",
        f"deployment-{env}",
        f"monitoring-{env}",
        f"batch-inference-{env}",
        f"quality-{env}",
        f"sweep-{env}",
    }
    for deployment in mine.values():
        assert deployment["work_pool"]["name"] == _pool(env)
        assert deployment["parameters"]["env"] == env
    assert mine[f"monitoring-{env}"]["schedules"]
    (trigger,) = mine[f"training-{env}"]["triggers"]
    assert trigger["expect"] == [DRIFT_ALERT_EVENT] and trigger["match"]["mlops.environment"] == env


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("flow", ["batch-inference", "quality", "sweep"])
def test_scheduled_flows_run_on_the_schedule_their_environment_configures(env: str, flow: str) -> None:
    (deployment,) = [d for d in DEPLOYMENTS if d["name"] == f"{flow}-{env}"]
    pipeline = load_settings(env).pipeline
    settings = {
        "batch-inference": pipeline.batch_inference,
        "quality": pipeline.quality,
        "sweep": pipeline.sweep,
    }
    configured = settings[flow].schedule
    scheduled = [s["cron"] for s in deployment.get("schedules", [])]
    assert scheduled == ([configured] if configured else [])
    assert configured or env == "local" or flow == "sweep"  # cloud environments schedule the others


def test_promotion_goes_from_staging_to_prod_on_the_prod_pool() -> None:
    (promotion,) = [d for d in DEPLOYMENTS if d["name"].startswith("promotion")]
    assert promotion["parameters"] == {"source": "staging", "target": "prod"}
    assert promotion["work_pool"]["name"] == work_pool_name("prod")


def test_kubernetes_job_template_can_request_gpus_and_declares_every_variable() -> None:
    import json
    import re

    template = json.loads((PACKAGE_ROOT / "orchestration" / "kubernetes-job-template.json").read_text())
    used = set(re.findall(r"{{\s*(\w+)\s*}}", json.dumps(template["job_configuration"])))
    declared = set(template["variables"]["properties"])
    assert used <= declared, used - declared
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["serviceAccountName"] == "{{ service_account_name }}"
    from infra.components.orchestrator import NAMESPACE, WORKER_SERVICE_ACCOUNT

    assert (
        template["variables"]["properties"]["service_account_name"]["default"] == WORKER_SERVICE_ACCOUNT
    )  # IRSA-bound
    assert template["variables"]["properties"]["namespace"]["default"] == NAMESPACE
    for deployment in DEPLOYMENTS:
        if deployment["name"].startswith("training-") and deployment["work_pool"]["name"].endswith(
            "-kubernetes"
        ):
            assert deployment["work_pool"]["job_variables"]["gpu_count"] >= 1
