"""The infrastructure program under Pulumi's mocks, for every environment, component by component."""

from __future__ import annotations

import json

import pytest

from infra.components.feature_store import feature_definitions
from infra.components.monitoring import alarm_names
from infra.inventory import evaluate_plan, mock_id
from infra.offline import Plan, read_stack_config
from mlops.contract import AwsLake, AwsQuery, PlatformContract
from mlops.paths import environments_dir
from mlops.settings import load_settings
from pipelines.usecase import load_usecase

from .conftest import ENVIRONMENTS

ZONES = {"dev": 2, "staging": 2, "prod": 3}
NATS = {"dev": 1, "staging": 2, "prod": 3}


def _policy(resource) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(resource.inputs["policy"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_passes_the_policy_pack(plans: dict[str, Plan], env: str) -> None:
    assert evaluate_plan(plans[env]) == []  # no violation at any level


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exported_contract_validates_and_matches_the_resources(plans: dict[str, Plan], env: str) -> None:
    plan = plans[env]
    contract = PlatformContract.model_validate(plan.outputs["platformContract"])
    assert contract.environment == env
    assert isinstance(contract.lake, AwsLake)
    assert contract.lake.raw_bucket == plan.named(f"mlops-{env}-raw").inputs["bucket"]
    assert contract.compute.kind == "aws" and contract.compute.gpu_job_queue == f"mlops-{env}-gpu-queue"
    # Batch runs the same platform image that the contract hands to the Kubernetes flow runs.
    job = json.loads(plan.named(f"mlops-{env}-training").inputs["containerProperties"])
    tag = read_stack_config(environments_dir(), env)[0].compute.image_tag
    assert job["image"] == contract.compute.image_uri and contract.compute.image_uri.endswith(
        f"-training:{tag}"
    )
    assert contract.monitoring.kind == "aws" and contract.monitoring.alarm_names == alarm_names(env)
    parameter = plan.named(f"mlops-{env}-platform-contract")
    assert parameter.inputs["name"] == load_settings(env).contract_parameter()
    assert PlatformContract.model_validate_json(parameter.inputs["value"]) == contract


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_spans_zones_with_nat_endpoints_and_flow_logs(plans: dict[str, Plan], env: str) -> None:
    plan = plans[env]
    private = [s for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["tier"] == "private"]
    assert len({s.inputs["availabilityZone"] for s in private}) == ZONES[env]
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == NATS[env]
    endpoints = {
        e.inputs["serviceName"].split(".", 3)[-1]: e.inputs["vpcEndpointType"]
        for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert endpoints == {
        "s3": "Gateway",
        "ecr.api": "Interface",
        "ecr.dkr": "Interface",
        "sagemaker.api": "Interface",
        "sagemaker.runtime": "Interface",
        "logs": "Interface",
        "sts": "Interface",
        "ssm": "Interface",
    }
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_rotates_and_data_stores_use_it(plans: dict[str, Plan], env: str) -> None:
    plan = plans[env]
    (key,) = plan.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert plan.of_type("aws:kms/alias:Alias")[0].inputs["name"] == f"alias/mlops-{env}-data"
    key_arn = f"arn:aws:kms:eu-west-1:123456789012:key/mlops-{env}-key"
    for group in plan.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["kmsKeyId"] == key_arn, group.name
    assert plan.of_type("aws:sns/topic:Topic")[0].inputs["kmsMasterKeyId"] == key_arn
    for repo in plan.of_type("aws:ecr/repository:Repository"):
        assert repo.inputs["encryptionConfigurations"][0]["kmsKey"] == key_arn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_buckets_are_versioned_tls_only_logged_and_expire(plans: dict[str, Plan], env: str) -> None:
    plan = plans[env]
    buckets = {b.name.removeprefix(f"mlops-{env}-"): b for b in plan.of_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {"raw", "curated", "artifacts", "quarantine", "query-results", "access-logs"}
    versioned = {
        v.inputs["bucket"]
        for v in plan.of_type("aws:s3/bucketVersioning:BucketVersioning")
        if v.inputs["versioningConfiguration"]["status"] == "Enabled"
    }
    logged = {
        log.inputs["bucket"]: log.inputs["targetBucket"]
        for log in plan.of_type("aws:s3/bucketLogging:BucketLogging")
    }
    policies = {p.inputs["bucket"]: _policy(p) for p in plan.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    lifecycles = {
        c.inputs["bucket"]: {r["id"]: r for r in c.inputs["rules"]}
        for c in plan.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    for purpose, bucket in buckets.items():
        ref = mock_id(bucket)
        assert ref in versioned, purpose
        deny = next(s for s in policies[ref]["Statement"] if s["Sid"] == "DenyInsecureTransport")
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert (
            lifecycles[ref]["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"][
                "daysAfterInitiation"
            ]
            == 7
        )
        if purpose != "access-logs":
            assert logged[ref] == mock_id(buckets["access-logs"])
    assert "transition-old-data" in lifecycles[mock_id(buckets["raw"])]
    assert "expire" in lifecycles[mock_id(buckets["quarantine"])]
    assert lifecycles[mock_id(buckets["query-results"])]["expire"]["expiration"]["days"] == 7
    assert plan.of_type("aws:glue/catalogDatabase:CatalogDatabase")[0].inputs["name"] == f"mlops_{env}_lake"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_compute_prefers_spot_scales_to_zero_and_retries_only_spot_reclaims(
    plans: dict[str, Plan], env: str
) -> None:
    plan = plans[env]
    environments = {
        e.name.removeprefix(f"mlops-{env}-"): e.inputs
        for e in plan.of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    }
    assert environments["gpu-spot"]["computeResources"]["type"] == "SPOT"
    assert environments["gpu-on-demand"]["computeResources"]["type"] == "EC2"
    for name, inputs in environments.items():
        assert inputs["computeResources"]["minVcpus"] == 0, name
    gpu_queue = plan.named(f"mlops-{env}-gpu-queue").inputs
    order = sorted(gpu_queue["computeEnvironmentOrders"], key=lambda o: o["order"])
    assert [o["computeEnvironment"].rsplit("/", 1)[-1] for o in order] == [
        f"mlops-{env}-gpu-spot",
        f"mlops-{env}-gpu-on-demand",
    ]
    assert gpu_queue["priority"] > plan.named(f"mlops-{env}-cpu-queue").inputs["priority"]

    job = plan.named(f"mlops-{env}-training").inputs
    assert [
        (e.get("onStatusReason"), e.get("onReason"), e["action"])
        for e in job["retryStrategy"]["evaluateOnExits"]
    ] == [
        ("Host EC2*", None, "RETRY"),
        (None, "*", "EXIT"),
    ]
    assert job["timeout"]["attemptDurationSeconds"] > 0
    container = json.loads(job["containerProperties"])
    assert {"type": "GPU", "value": "1"} in container["resourceRequirements"]
    assert container["privileged"] is False
    assert container["command"][-1] == "Ref::spec_uri"
    for repo in plan.of_type("aws:ecr/repository:Repository"):
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"]["scanOnPush"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_feature_groups_come_from_the_pipelines_feature_definitions(plans: dict[str, Plan], env: str) -> None:
    usecase = load_usecase(load_settings(env).pipeline.usecase_path())
    (group,) = plans[env].of_type("aws:sagemaker/featureGroup:FeatureGroup")
    declared = [(d["featureName"], d["featureType"]) for d in group.inputs["featureDefinitions"]]
    assert declared == feature_definitions(usecase)
    assert {name for name, _ in declared} >= set(usecase.feature_names())
    assert group.inputs["offlineStoreConfig"]["tableFormat"] == "Iceberg"
    assert group.inputs["offlineStoreConfig"]["s3StorageConfig"]["kmsKeyId"].endswith(f"mlops-{env}-key")
    online = group.inputs.get("onlineStoreConfig")
    assert bool(online) == (env != "dev")
    if online:
        assert online["securityConfig"]["kmsKeyId"].endswith(f"mlops-{env}-key")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_registry_tracking_and_alarms(plans: dict[str, Plan], env: str) -> None:
    plan = plans[env]
    assert (
        plan.named(f"mlops-{env}-churn-model").inputs["modelPackageGroupName"] == f"mlops-{env}-churn-model"
    )
    assert (
        plan.named(f"mlops-{env}-mlflow").inputs["artifactStoreUri"] == f"s3://mlops-{env}-artifacts/mlflow"
    )
    cross_account = plan.of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    if env == "staging":
        (policy,) = cross_account
        statement = json.loads(policy.inputs["resourcePolicy"])["Statement"][0]
        assert statement["Principal"] == {"AWS": ["arn:aws:iam::222222222222:root"]}
        assert all(a.startswith(("sagemaker:Describe", "sagemaker:List")) for a in statement["Action"])
    else:
        assert cross_account == []
    rules = [json.loads(r.inputs["eventPattern"]) for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert any(r["detail-type"] == ["SageMaker Model Package State Change"] for r in rules)
    alarms = {a.inputs["name"] for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms == set(alarm_names(env).values())
    (dashboard,) = plan.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.dumps(json.loads(dashboard.inputs["dashboardBody"]))
    # every metric the flows publish has a chart, and the endpoint's latency and resources too
    for metric in (
        "live_auc",
        "labels_pending",
        "labels_unlabelled",
        "drift_max_psi",
        "evaluation_auc",
        "batch_job_failures",
        "ModelLatency",
        "OverheadLatency",
        "CPUUtilization",
        "MemoryUtilization",
    ):
        assert metric in body, metric
    assert f"SEARCH('{{mlops/{env},environment,model,slice,version}} MetricName=\\\"live_auc\\\"'" in body


def test_environments_differ_by_config_only(plans: dict[str, Plan]) -> None:
    def shape(plan: Plan) -> set[str]:
        return {r.type for r in plan.resources}

    # Optional by config: alarm e-mail subscriptions; prod's multi-node training (a placement group);
    # prod's monitoring stack (its dashboard is a ConfigMap).
    optional = {
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:ec2/placementGroup:PlacementGroup",
        "kubernetes:core/v1:ConfigMap",
    }
    assert shape(plans["dev"]) - optional == shape(plans["prod"]) - optional
    assert len(plans["prod"].resources) > len(plans["dev"].resources)  # more zones, more NATs


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_logical_names_are_unique_and_derived_from_the_environment(plans: dict[str, Plan], env: str) -> None:
    names = [r.name for r in plans[env].resources]
    assert len(names) == len(set(names))
    assert all(name.startswith(f"mlops-{env}-") for name in names)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_query_engine_is_an_enforced_athena_v3_workgroup_the_flows_can_use(
    plans: dict[str, Plan], env: str
) -> None:
    plan = plans[env]
    contract = PlatformContract.model_validate(plan.outputs["platformContract"])
    assert isinstance(contract.query, AwsQuery) and contract.query.workgroup == f"mlops-{env}-features"
    (workgroup,) = plan.of_type("aws:athena/workgroup:Workgroup")
    config = workgroup.inputs["configuration"]
    assert workgroup.inputs["name"] == contract.query.workgroup and workgroup.inputs["state"] == "ENABLED"
    assert config["enforceWorkgroupConfiguration"] and config["publishCloudwatchMetricsEnabled"]
    assert config["engineVersion"]["selectedEngineVersion"] == "Athena engine version 3"
    assert config["bytesScannedCutoffPerQuery"] >= 10 * 1024**2  # Athena's minimum is 10 MB
    results = config["resultConfiguration"]
    key_arn = f"arn:aws:kms:eu-west-1:123456789012:key/mlops-{env}-key"
    assert results["encryptionConfiguration"] == {"encryptionOption": "SSE_KMS", "kmsKeyArn": key_arn}
    bucket = plan.named(f"mlops-{env}-query-results").inputs["bucket"]
    assert contract.query.results_location == f"s3://{bucket}/features"
    assert results["outputLocation"].startswith(contract.query.results_location + "/")
    statements = json.loads(plan.named(f"mlops-{env}-flows-policy").inputs["policy"])["Statement"]
    granted = {s["Sid"]: s for s in statements}
    assert "athena:StartQueryExecution" in granted["QueryEngine"]["Action"]
    assert granted["QueryEngine"]["Resource"].endswith(f":workgroup/{contract.query.workgroup}")
    assert any(r.startswith(f"arn:aws:s3:::{bucket}") for r in granted["Lake"]["Resource"])
