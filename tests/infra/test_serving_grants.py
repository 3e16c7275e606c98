"""The roles can do what the serving code does on real AWS: every SageMaker call the deployer and the
capture loader make (found in their source, named by botocore's model) is granted to the flows'
role on the names they use, the flows may hand SageMaker the endpoint's role, and that role can
read the model files where training writes them."""

from __future__ import annotations

import ast
import json
from fnmatch import fnmatchcase
from typing import Any

import boto3
import pytest

from infra.offline import Plan
from mlops.paths import PACKAGE_ROOT
from pipelines.training.run_spec import TrainingRunSpec

SERVING_MODULES = ("pipelines/adapters/aws/endpoint.py", "pipelines/adapters/aws/capture.py")
ENV = "dev"


def _statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    statements = json.loads(plan.named(name).inputs["policy"])["Statement"]
    return [s for s in statements if s["Effect"] == "Allow"]


def _allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    def listed(value: Any) -> list[str]:
        return value if isinstance(value, list) else [value]

    return any(
        any(fnmatchcase(action, a) for a in listed(s["Action"]))
        and any(fnmatchcase(resource, r) for r in listed(s["Resource"]))
        for s in statements
    )


def sagemaker_calls() -> set[str]:
    """The SageMaker API operations the serving adapters call (`self.sagemaker.<method>(...)`)."""
    to_operation = boto3.client("sagemaker", region_name="eu-west-1").meta.method_to_api_mapping
    calls = set()
    for module in SERVING_MODULES:
        for node in ast.walk(ast.parse((PACKAGE_ROOT / module).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "sagemaker"
            ):
                calls.add(to_operation[node.func.attr])
    return calls


def test_the_flows_may_make_every_sagemaker_call_of_the_serving_code(plans: dict[str, Plan]) -> None:
    calls = sagemaker_calls()
    assert {"CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "DescribeModel"} <= calls
    flows = _statements(plans[ENV], f"mlops-{ENV}-flows-policy")
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:{{}}/mlops-{ENV}-endpoint{{}}"
    # The names the deployer gives: `<endpoint>-v<N>-<stamp>` models, `...-config` configs.
    targets = {
        "model": arn.format("model", "-v3-20261130101500"),
        "endpoint-config": arn.format("endpoint-config", "-v3-20261130101500-split-config"),
        "endpoint": arn.format("endpoint", ""),
    }
    kinds = {
        "CreateModel": "model",
        "DescribeModel": "model",
        "CreateEndpointConfig": "endpoint-config",
        "DescribeEndpointConfig": "endpoint-config",
        "CreateEndpoint": "endpoint",
        "UpdateEndpoint": "endpoint",
        "DescribeEndpoint": "endpoint",
    }
    for operation in sorted(calls):
        assert operation in kinds, f"{operation}: a SageMaker call this test does not know the resource of"
        assert _allows(flows, f"sagemaker:{operation}", targets[kinds[operation]]), operation
    # The role the deployer hands SageMaker is the contract's; the flows may pass that one only.
    serving = json.loads(plans[ENV].named(f"mlops-{ENV}-platform-contract").inputs["value"])["serving"]
    role_arn = serving["execution_role_arn"]
    assert serving["endpoint_name"] == f"mlops-{ENV}-endpoint"
    passing = [s for s in flows if s["Action"] == "iam:PassRole"]
    assert [s["Resource"] for s in passing] == [role_arn]
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize("run_key", ["20261130T101500Z-abc123"])
def test_the_endpoint_role_reads_the_model_files_training_writes(
    plans: dict[str, Plan], run_key: str
) -> None:
    spec = TrainingRunSpec.model_construct(run_prefix=f"runs/churn-model/{run_key}")
    endpoint = _statements(plans[ENV], f"mlops-{ENV}-endpoint-execution-policy")
    model_file = f"arn:aws:s3:::mlops-{ENV}-artifacts/{spec.key('model')}/network.pt"
    assert _allows(endpoint, "s3:GetObject", model_file)
    assert not _allows(
        endpoint,
        "s3:GetObject",
        f"arn:aws:s3:::mlops-{ENV}-artifacts/runs/churn-model/{run_key}/data/train.parquet",
    )
    alarms = [s for s in endpoint if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert alarms and all(r.endswith(("-5xx-rate", "-p99-latency")) for r in alarms[0]["Resource"])
