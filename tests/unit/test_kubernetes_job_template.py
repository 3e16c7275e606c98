"""The Kubernetes work pool's job template, rendered by Prefect's own Kubernetes worker code and
checked field by field against the Kubernetes API's models: what a real worker would submit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubernetes_asyncio.client import models
from prefect.client.schemas.objects import FlowRun
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

from infra.components.orchestrator import NAMESPACE, WORKER_SERVICE_ACCOUNT
from infra.offline import Plan
from mlops.contract import AwsCompute, PlatformContract
from mlops.work_pool import kubernetes_job_template
from tests.unit.test_prefect_yaml import DEPLOYMENTS

# Prefect's worker insists on these two in the pod spec (its own default template has them there);
# the API server ignores them. Everything else must be a real field.
PREFECT_REQUIRED_EXTRAS = {"spec.template.spec.parallelism", "spec.template.spec.completions"}
PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str, int),  # quantities may be numbers
    "int": (int,),
    "bool": (bool,),
    "object": (object,),
    "datetime": (str,),
}


def unknown_fields(value: Any, type_name: str, path: str = "") -> list[str]:
    """Paths in `value` that the Kubernetes model `type_name` does not define, or of the wrong type."""
    if type_name.startswith("list["):
        return [
            e for i, item in enumerate(value) for e in unknown_fields(item, type_name[5:-1], f"{path}[{i}]")
        ]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for key, item in value.items() for e in unknown_fields(item, inner, f"{path}.{key}")]
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name])
        return [] if ok else [f"{path}: {value!r} is not {type_name}"]
    model = getattr(models, type_name)
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object"]
    by_json_name = {json_name: attribute for attribute, json_name in model.attribute_map.items()}
    errors = []
    for key, item in value.items():
        where = f"{path}.{key}".lstrip(".")
        if key not in by_json_name:
            if where not in PREFECT_REQUIRED_EXTRAS:
                errors.append(f"{where}: not a field of {type_name}")
            continue
        errors += unknown_fields(item, model.openapi_types[by_json_name[key]], where)
    return errors


@pytest.fixture(scope="module")
def prod_contract(plans: dict[str, Plan]) -> PlatformContract:
    return PlatformContract.model_validate(plans["prod"].outputs["platformContract"])


def _render(template: dict[str, Any], job_variables: dict[str, Any]) -> dict[str, Any]:
    configuration = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(template, job_variables)
    )
    configuration.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="brave-otter"))
    manifest: dict[str, Any] = configuration.job_manifest
    return manifest


def test_the_validator_catches_a_misplaced_field() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [{"nam": "x"}]}}},
    }
    assert unknown_fields(job, "V1Job") == [
        "spec.template.spec.containers[0].nam: not a field of V1Container"
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_training_runs_render_to_a_valid_gpu_job_on_the_platform_image(
    prod_contract: PlatformContract,
) -> None:
    template = kubernetes_job_template(prod_contract)
    (training,) = [d for d in DEPLOYMENTS if d["name"] == "training-prod"]
    manifest = _render(template, training["work_pool"]["job_variables"])

    assert unknown_fields(manifest, "V1Job") == []
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (
        isinstance(prod_contract.compute, AwsCompute)
        and container["image"] == prod_contract.compute.image_uri
    )
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["resources"]["limits"]["memory"] == "16Gi"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert (
        pod["serviceAccountName"] == WORKER_SERVICE_ACCOUNT and manifest["metadata"]["namespace"] == NAMESPACE
    )
    assert container["args"][:3] == ["prefect", "flow-run", "execute"]


@pytest.mark.usefixtures("prefect_harness")
def test_other_runs_ask_for_no_gpu(prod_contract: PlatformContract) -> None:
    (monitoring,) = [d for d in DEPLOYMENTS if d["name"] == "monitoring-prod"]
    manifest = _render(
        kubernetes_job_template(prod_contract), monitoring["work_pool"].get("job_variables", {})
    )
    assert unknown_fields(manifest, "V1Job") == []
    assert (
        int(manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        == 0
    )
