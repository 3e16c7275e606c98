"""Deployment to SageMaker: first deployment under moto; blue/green updates through botocore's Stubber
(moto does not implement UpdateEndpoint)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from mlops.contract import AwsServing
from pipelines.adapters.aws.endpoint import SageMakerDeployer, deployment_config
from pipelines.deployment.endpoint import read_state
from pipelines.deployment.guarded import CanaryPolicy
from pipelines.ports import ApprovalStatus, ModelVersion
from pipelines.serving.handler import InferenceHandler
from tests.aws_emulator import aws_client
from tests.registry_helpers import register_approved

SERVING = AwsServing(
    endpoint_name="mlops-dev-endpoint",
    execution_role_arn="arn:aws:iam::123456789012:role/mlops-dev-endpoint-execution-role",
    image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev-serving:1",
    data_capture_uri="s3://mlops-dev-curated/data-capture",
    kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/k",
)
ALARMS = ["mlops-dev-endpoint-5xx-rate", "mlops-dev-endpoint-p99-latency"]


@pytest.fixture
def approved(platform: Any, trained: tuple[Any, pd.DataFrame], usecase: Any, tmp_path: Any) -> dict[str, Any]:
    bundle, test = trained
    (version,) = register_approved(platform, bundle, tmp_path / "bundle")
    rows = test[["customer_id", *bundle.feature_names]]
    return {
        "version": version,
        "handler_for": lambda v: InferenceHandler(bundle, usecase),
        "traffic": rows,
        "smoke": (rows.head(3), bundle.predict_proba(rows.head(3)).tolist()),
    }


def _deploy(
    deployer: SageMakerDeployer, platform: Any, approved: dict[str, Any], version: ModelVersion | None = None
) -> Any:
    return deployer.deploy(
        version or approved["version"],
        approved["handler_for"],
        platform.registry,
        platform.artifacts,
        approved["traffic"],
        approved["smoke"],
        CanaryPolicy(canary_share=0.1),
    )


def test_first_deployment_creates_model_config_and_endpoint(
    aws: str, platform: Any, approved: dict[str, Any]
) -> None:
    deployer = SageMakerDeployer(SERVING, ALARMS, "dev", poll_seconds=0.01)
    outcome = _deploy(deployer, platform, approved)
    assert outcome.decision == "promoted"
    sagemaker = aws_client(aws, "sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="mlops-dev-endpoint")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["KmsKeyId"] == SERVING.kms_key_id
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == SERVING.data_capture_uri
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert (
        model["PrimaryContainer"]["Image"] == SERVING.image_uri
    )  # (moto does not keep EnableNetworkIsolation: the Stubber tests check it)
    # What `mlops container serve` reads inside the endpoint's container.
    assert model["PrimaryContainer"]["Environment"] == {
        "MLOPS_MODEL_VERSION": "1",
        "MLOPS_ENVIRONMENT": "dev",
    }


def _stubbed_update(final_config: str | None, status: str = "InService") -> tuple[Any, Stubber]:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    stub = Stubber(sagemaker)
    endpoint = {
        "EndpointName": "mlops-dev-endpoint",
        "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/mlops-dev-endpoint",
        "CreationTime": datetime(2025, 1, 1),
        "LastModifiedTime": datetime(2025, 1, 1),
    }
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/m"},
        {
            "ModelName": ANY,
            "ExecutionRoleArn": SERVING.execution_role_arn,
            "EnableNetworkIsolation": True,
            "PrimaryContainer": ANY,
        },
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/c"},
        None,
    )
    stub.add_response(
        "describe_endpoint",
        {**endpoint, "EndpointConfigName": "old-config", "EndpointStatus": "InService"},
        {"EndpointName": "mlops-dev-endpoint"},
    )
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": endpoint["EndpointArn"]},
        {
            "EndpointName": "mlops-dev-endpoint",
            "EndpointConfigName": ANY,
            "DeploymentConfig": deployment_config(CanaryPolicy(canary_share=0.1), ALARMS, 600),
        },
    )
    stub.add_response(
        "describe_endpoint",
        {**endpoint, "EndpointConfigName": "old-config", "EndpointStatus": "Updating"},
        {"EndpointName": "mlops-dev-endpoint"},
    )
    stub.add_response(
        "describe_endpoint",
        {**endpoint, "EndpointConfigName": final_config or "old-config", "EndpointStatus": status},
        {"EndpointName": "mlops-dev-endpoint"},
    )
    stub.activate()
    return sagemaker, stub


class ConfigRecorder(SageMakerDeployer):
    """Remembers the config it created so the stubbed endpoint can report it as live."""

    def _create_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
        self.created = super()._create_config(name, variants)
        return self.created


def test_blue_green_update_with_canary_and_alarm_rollback_is_promoted(
    platform: Any, approved: dict[str, Any]
) -> None:
    config = deployment_config(CanaryPolicy(canary_share=0.1), ALARMS, 600)
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": a} for a in ALARMS]}

    sagemaker, stub = _stubbed_update(final_config=None)
    deployer = ConfigRecorder(SERVING, ALARMS, sagemaker=sagemaker, sleep=lambda _: None)
    # The stub's final answer names the previous config: SageMaker rolled back on an alarm.
    outcome = _deploy(deployer, platform, approved)
    assert outcome.decision == "rolled_back" and "rolled back by SageMaker" in outcome.reason
    assert platform.registry.get("churn-model", 1).status == ApprovalStatus.REJECTED
    assert read_state(platform.artifacts, "churn-model").live_version() is None
    stub.assert_no_pending_responses()


def test_blue_green_update_that_completes_is_promoted(platform: Any, approved: dict[str, Any]) -> None:
    class Fixed(SageMakerDeployer):
        def _create_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
            super()._create_config(name, variants)
            return "new-config"

    sagemaker, stub = _stubbed_update(final_config="new-config")
    outcome = _deploy(Fixed(SERVING, ALARMS, sagemaker=sagemaker, sleep=lambda _: None), platform, approved)
    assert outcome.decision == "promoted" and "new-config" in outcome.reason
    assert platform.registry.get("churn-model", 1).status == ApprovalStatus.APPROVED
    # Recorded for monitoring and experiments, which read which version is live.
    assert read_state(platform.artifacts, "churn-model").live_version() == 1
    stub.assert_no_pending_responses()


def test_smoke_test_failure_stops_before_any_aws_call(platform: Any, approved: dict[str, Any]) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    stub = Stubber(sagemaker)
    stub.activate()  # no responses queued: any call would fail the test
    rows, expected = approved["smoke"]
    outcome = SageMakerDeployer(SERVING, ALARMS, sagemaker=sagemaker).deploy(
        approved["version"],
        approved["handler_for"],
        platform.registry,
        platform.artifacts,
        approved["traffic"],
        (rows, [x + 0.5 for x in expected]),
    )
    assert outcome.decision == "smoke_test_failed"
