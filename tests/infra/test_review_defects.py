"""The defects an offline review of the dev, staging and prod plans found, each pinned by a test.

Each would have failed a real `pulumi up` or release run while Pulumi's mocks accepted it.
"""

from __future__ import annotations

import json

import pytest

from infra.charts import chart_pins, prefect_image_tag
from infra.components.monitoring import sagemaker_endpoint_log_group
from infra.config import OrchestratorConfig, StackConfigError
from infra.offline import Plan

from .conftest import ENVIRONMENTS, plan_with


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_compute_environments_use_batchs_al2023_nvidia_image(plans: dict[str, Plan], env: str) -> None:
    images = {
        ce.name.removeprefix(f"mlops-{env}-"): ce.inputs["computeResources"]["ec2Configurations"][0][
            "imageType"
        ]
        for ce in plans[env].of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    }
    # Batch blocks new ECS environments on its Amazon Linux 2 AMIs from 2026-06-30 (ECS_AL2_NVIDIA before).
    assert {"gpu-spot", "gpu-on-demand", "cpu"} <= set(images)
    assert all(
        image == ("ECS_AL2023_NVIDIA" if name.startswith("gpu") else "ECS_AL2023")
        for name, image in images.items()
    )


def test_default_kubernetes_version_is_no_longer_one_aws_refuses() -> None:
    # 1.31 left EKS extended support on 2026-11-26; the calendar test checks the date of the new one.
    assert OrchestratorConfig().kubernetes_version != "1.31"


def test_release_runner_reaches_the_cluster_api_and_nobody_else() -> None:
    plan = plan_with(
        "dev", orchestrator={"ci_runner_cidr": "203.0.113.7/32", "api_access_cidrs": ("198.51.100.0/24",)}
    )
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24", "203.0.113.7/32"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_access_cidrs", ("0.0.0.0/0",), "whole internet"),
        ("api_access_cidrs", ("10.0.0.0/33",), "not an IPv4 CIDR"),
        ("ci_runner_cidr", "203.0.113.0/24", "not a single address"),
    ],
)
def test_an_open_or_malformed_api_cidr_is_refused_naming_the_key(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(StackConfigError) as caught:
        plan_with("dev", orchestrator={field: value})
    assert f"orchestrator.{field}" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_chart_is_pinned_to_a_published_version(plans: dict[str, Plan], env: str) -> None:
    pins = chart_pins()
    for release in plans[env].of_type("kubernetes:helm.sh/v3:Release"):
        chart = release.inputs["chart"]
        assert release.inputs.get("version") == pins[chart].version, release.name
        assert release.inputs["repositoryOpts"]["repo"] == pins[chart].repository, release.name
    # Prefect's charts carry a time suffix; `2025.9.5` is in no index.
    assert pins["prefect-server"].version == pins["prefect-worker"].version == "2025.9.5190948"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_prefect_server_gets_its_database_secret_from_the_chart(plans: dict[str, Plan], env: str) -> None:
    releases = {r.inputs["name"]: r.inputs for r in plans[env].of_type("kubernetes:helm.sh/v3:Release")}
    secret = releases["prefect-server"]["values"]["secret"]
    (db,) = plans[env].of_type("aws:rds/instance:Instance")
    # `create: false` left the server waiting for a Secret nothing made (CreateContainerConfigError).
    assert secret["create"] is True and secret["name"] == "prefect-database"
    assert secret["password"] == db.inputs["password"] and secret["username"] == db.inputs["username"]
    assert secret["database"] == db.inputs["dbName"] and secret["port"] == "5432"
    for name in ("prefect-server", "prefect-worker"):
        key = "server" if name == "prefect-server" else "worker"
        assert releases[name]["values"][key]["image"]["prefectTag"] == prefect_image_tag()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flows_may_submit_training_by_definition_name(plans: dict[str, Plan], env: str) -> None:
    policy = json.loads(plans[env].named(f"mlops-{env}-flows-policy").inputs["policy"])
    (training,) = [s for s in policy["Statement"] if s.get("Sid") == "Training"]
    prefix = f"arn:aws:batch:eu-west-1:123456789012:job-definition/mlops-{env}-training"
    # IAM evaluates a submission by name against the revision-less ARN, and SubmitJob needs `job`.
    assert prefix in training["Resource"] and f"{prefix}:*" in training["Resource"]
    assert f"{prefix}:1" not in training["Resource"]
    assert "arn:aws:batch:eu-west-1:123456789012:job/*" in training["Resource"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sagemaker_endpoint_logs_have_retention_the_key_and_the_role(
    plans: dict[str, Plan], env: str
) -> None:
    group = plans[env].named(f"mlops-{env}-endpoint-container-logs")
    assert group.inputs["name"] == sagemaker_endpoint_log_group(f"mlops-{env}-endpoint")
    assert group.inputs["name"] == f"/aws/sagemaker/Endpoints/mlops-{env}-endpoint"
    assert group.inputs["retentionInDays"] > 0 and group.inputs["kmsKeyId"].endswith(f"mlops-{env}-key")
    policy = json.loads(plans[env].named(f"mlops-{env}-endpoint-execution-policy").inputs["policy"])
    (logs,) = [s for s in policy["Statement"] if s.get("Sid") == "Logs"]
    assert f"arn:aws:logs:eu-west-1:123456789012:log-group:{group.inputs['name']}:*" in logs["Resource"]
