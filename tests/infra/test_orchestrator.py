"""The orchestrator component under mocks: private EKS, node groups, Prefect by Helm, RDS, IRSA."""

from __future__ import annotations

import json

import pytest

from infra.components.orchestrator import CONTROL_PLANE_LOGS, server_api_url
from infra.offline import Plan
from mlops.contract import PlatformContract

from .conftest import ENVIRONMENTS, plan_with


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_encrypted_logged_cluster_private_unless_a_cidr_is_allowed(plans: dict[str, Plan], env: str) -> None:
    (cluster,) = plans[env].of_type("aws:eks/cluster:Cluster")
    inputs = cluster.inputs
    # No CIDR in the stack file and no release runner: nothing outside the VPC reaches the API.
    assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert (
        inputs["vpcConfig"]["endpointPublicAccess"] is False
        and "publicAccessCidrs" not in inputs["vpcConfig"]
    )
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": True,
    }
    assert inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert inputs["encryptionConfig"]["provider"]["keyArn"].endswith(f"mlops-{env}-key")
    assert inputs["enabledClusterLogTypes"] == CONTROL_PLANE_LOGS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_node_groups_and_gpu_taints(plans: dict[str, Plan], env: str) -> None:
    groups = {
        g.name.removeprefix(f"mlops-{env}-"): g.inputs
        for g in plans[env].of_type("aws:eks/nodeGroup:NodeGroup")
    }
    assert groups["eks-cpu-nodes"]["amiType"] == "AL2023_x86_64_STANDARD"
    if env == "dev":
        assert "eks-gpu-nodes" not in groups
    else:
        gpu = groups["eks-gpu-nodes"]
        assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
        assert gpu["scalingConfig"]["minSize"] == 0
        releases = {r.inputs["name"] for r in plans[env].of_type("kubernetes:helm.sh/v3:Release")}
        assert "nvidia-device-plugin" in releases


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_prefect_server_and_worker_by_helm_with_the_work_pool_in_the_contract(
    plans: dict[str, Plan], env: str
) -> None:
    releases = {r.inputs["name"]: r.inputs for r in plans[env].of_type("kubernetes:helm.sh/v3:Release")}
    worker = releases["prefect-worker"]
    assert worker["values"]["worker"]["config"]["workPool"] == f"{env}-kubernetes"
    role = worker["values"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.endswith(f"mlops-{env}-flows-role")
    assert releases["prefect-server"]["values"]["postgresql"]["enabled"] is False
    contract = PlatformContract.model_validate(plans[env].outputs["platformContract"])
    assert (
        contract.orchestrator.work_pool == f"{env}-kubernetes"
        and contract.orchestrator.api_url == server_api_url()
    )
    assert (env == "prod") == ("kube-prometheus-stack" in releases)
    dashboards = [
        c for c in plans[env].of_type("kubernetes:core/v1:ConfigMap") if c.name.endswith("serving-dashboard")
    ]
    assert len(dashboards) == (1 if env == "prod" else 0)  # with the monitoring stack only
    for config_map in dashboards:
        assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
        (text,) = config_map.inputs["data"].values()
        assert json.loads(text)["uid"] == "mlops-serving"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_prefect_database_is_private_encrypted_and_redundant_where_it_matters(
    plans: dict[str, Plan], env: str
) -> None:
    (db,) = plans[env].of_type("aws:rds/instance:Instance")
    inputs = db.inputs
    assert inputs["storageEncrypted"] is True and inputs["publiclyAccessible"] is False
    # A Pulumi secret: encrypted in the state, never in the repository or the stack file.
    assert inputs["password"] == "offline-plan-password" and "manageMasterUserPassword" not in inputs
    assert inputs["multiAz"] is (env != "dev")
    assert inputs["backupRetentionPeriod"] == {"dev": 1, "staging": 7, "prod": 14}[env]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flows_assume_their_role_through_the_worker_service_account_only(
    plans: dict[str, Plan], env: str
) -> None:
    role = plans[env].named(f"mlops-{env}-flows-role")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]["StringEquals"]
    assert "system:serviceaccount:prefect:prefect-worker" in conditions.values()
    policy = json.loads(plans[env].named(f"mlops-{env}-flows-policy").inputs["policy"])
    actions = {
        a
        for s in policy["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert (
        "batch:SubmitJob" in actions
        and "ssm:GetParameter" in actions
        and not any(a.endswith("*") for a in actions)
    )


def test_prefect_cloud_mode_keeps_the_api_key_in_secrets_manager() -> None:
    plan = plan_with("dev", orchestrator={"mode": "cloud"})
    (secret,) = plan.of_type("aws:secretsmanager/secret:Secret")
    assert secret.inputs["name"] == "mlops/dev/prefect-cloud-api-key" and secret.inputs["kmsKeyId"].endswith(
        "mlops-dev-key"
    )
    assert plan.of_type("aws:rds/instance:Instance") == []
    releases = {r.inputs["name"]: r.inputs for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    assert (
        "prefect-server" not in releases
        and releases["prefect-worker"]["values"]["worker"]["apiConfig"] == "cloud"
    )
