"""Multi-node data-parallel training in the plan: what Batch requires of such jobs, from its docs
(EC2 on-demand only, one instance type, a cluster placement group), and the config's guards."""

from __future__ import annotations

import json

import pytest

from infra.config import StackConfigError, parse_stack_config
from infra.offline import Plan, read_stack_config

from .conftest import ENV_DIR


def test_prod_plans_a_multi_node_parallel_job_on_on_demand_gpus_in_a_placement_group(
    plans: dict[str, Plan],
) -> None:
    plan = plans["prod"]
    definition = plan.named("mlops-prod-training-distributed")
    assert definition.inputs["type"] == "multinode" and definition.inputs["platformCapabilities"] == ["EC2"]
    nodes = json.loads(definition.inputs["nodeProperties"])
    assert nodes["numNodes"] == 2 and nodes["mainNode"] == 0
    container = nodes["nodeRangeProperties"][0]["container"]
    assert container["command"] == ["python", "-m", "pipelines.training.launch", "Ref::spec_uri"]
    assert {"type": "GPU", "value": "4"} in container["resourceRequirements"]
    assert {"name": "MLOPS_PROCESSES_PER_NODE", "value": "4"} in container["environment"]

    environment = plan.named("mlops-prod-gpu-distributed").inputs["computeResources"]
    assert environment["type"] == "EC2"  # Batch runs multi-node parallel jobs on on-demand EC2 only
    assert len(environment["subnets"]) == 1 and environment["placementGroup"]
    assert plan.named("mlops-prod-training-placement").inputs["strategy"] == "cluster"
    group = plan.named("mlops-prod-distributed-sg").inputs
    assert all(rule.get("self") for rule in group["ingress"])  # ranks reach only each other

    statements = json.loads(plan.named("mlops-prod-flows-policy").inputs["policy"])["Statement"]
    training = next(s for s in statements if s["Sid"] == "Training")
    assert any("training-distributed" in r for r in training["Resource"])
    assert not plans["dev"].of_type("aws:ec2/placementGroup:PlacementGroup")


def _prod_with(**distributed: object) -> None:
    config, _ = read_stack_config(ENV_DIR, "prod")
    payload = config.model_dump()
    payload["compute"]["distributed"] = {**payload["compute"]["distributed"], **distributed}
    parse_stack_config(payload, "environments/Pulumi.prod.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gpus_per_node": 8}, "gpus_per_node is 8 but g5.12xlarge has 4 GPU"),
        (
            {"instance_types": ["g5.2xlarge"], "gpus_per_node": 1},
            "require_efa: g5.2xlarge has no Elastic Fabric Adapter",
        ),
        ({"instance_types": ["x9.huge"]}, "'x9.huge' is not in gpu_instances.yaml"),
        ({"nodes": 0}, "nodes"),
        ({"max_vcpus": 50}, "cannot hold 2 nodes of 48 vCPUs"),
    ],
)
def test_bad_distributed_config_fails_in_one_line(change: dict[str, object], message: str) -> None:
    with pytest.raises(StackConfigError, match=message) as caught:
        _prod_with(**change)
    assert "Traceback" not in str(caught.value)
