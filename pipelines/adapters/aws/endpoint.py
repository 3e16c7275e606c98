"""Deployment to a SageMaker real-time endpoint: blue/green with canary traffic shifting, a baking
period and automatic rollback on the CloudWatch alarms named in the contract.

SageMaker enforces the policy itself; this adapter runs the smoke test on the candidate's own
artifacts first, asks for the update, waits for the endpoint to settle and reads the outcome: the
new endpoint config in service means promoted, the old one means SageMaker rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from mlops.contract import AwsServing
from pipelines.adapters.aws.session import client
from pipelines.deployment.guarded import CanaryPolicy, DeploymentOutcome, gate_on_smoke_test
from pipelines.ports import ApprovalStatus, ArtifactStore, ModelVersion, RegistryPort
from pipelines.serving.handler import InferenceHandler

VARIANT = "AllTraffic"


def deployment_config(policy: CanaryPolicy, alarm_names: list[str], bake_seconds: int) -> dict[str, Any]:
    """Blue/green, canary first, then all traffic; any alarm during the bake rolls back."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": max(1, round(policy.canary_share * 100))},
                "WaitIntervalInSeconds": bake_seconds,
            },
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": max(1800, bake_seconds * 4),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


class SageMakerDeployer:
    """DeployerPort on a SageMaker endpoint."""

    def __init__(
        self,
        serving: AwsServing,
        alarm_names: list[str],
        environment: str = "",
        sagemaker: Any | None = None,
        bake_seconds: int = 600,
        poll_seconds: float = 30.0,
        max_wait_seconds: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.serving, self.alarm_names, self.environment = serving, alarm_names, environment
        self.sagemaker = sagemaker or client("sagemaker")
        self.bake_seconds, self.poll_seconds, self.max_wait = bake_seconds, poll_seconds, max_wait_seconds
        self.sleep = sleep

    def _exists(self) -> bool:
        try:
            self.sagemaker.describe_endpoint(EndpointName=self.serving.endpoint_name)
            return True
        except self.sagemaker.exceptions.ClientError:
            return False

    def _create_config(self, version: ModelVersion) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        model = f"{self.serving.endpoint_name}-v{version.version}-{stamp}"
        self.sagemaker.create_model(
            ModelName=model,
            ExecutionRoleArn=self.serving.execution_role_arn,
            EnableNetworkIsolation=True,
            PrimaryContainer={
                "Image": self.serving.image_uri,
                "ModelDataSource": {
                    "S3DataSource": {
                        "S3Uri": version.artifact_uri.rstrip("/") + "/",
                        "S3DataType": "S3Prefix",
                        "CompressionType": "None",
                    }
                },
                # What the container (`mlops container serve`) needs to know: model version, use case.
                "Environment": {
                    "MLOPS_MODEL_VERSION": str(version.version),
                    **({"MLOPS_ENVIRONMENT": self.environment} if self.environment else {}),
                },
            },
        )
        config = f"{model}-config"
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            KmsKeyId=self.serving.kms_key_id,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": model,
                    "InitialInstanceCount": self.serving.instance_count,
                    "InstanceType": self.serving.instance_type,
                }
            ],
            DataCaptureConfig={
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": self.serving.data_capture_uri,
                "KmsKeyId": self.serving.kms_key_id,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            },
        )
        return config

    def _settle(self) -> dict[str, Any]:
        waited = 0.0
        while True:
            endpoint: dict[str, Any] = self.sagemaker.describe_endpoint(
                EndpointName=self.serving.endpoint_name
            )
            if (
                endpoint["EndpointStatus"] not in ("Creating", "Updating", "SystemUpdating", "RollingBack")
                or waited >= self.max_wait
            ):
                return endpoint
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def deploy(
        self,
        candidate: ModelVersion,
        handler_for: Callable[[ModelVersion], InferenceHandler],
        registry: RegistryPort,
        store: ArtifactStore,
        traffic: pd.DataFrame,
        smoke: tuple[pd.DataFrame, list[float]],
        policy: CanaryPolicy = CanaryPolicy(),
    ) -> DeploymentOutcome:
        failed = gate_on_smoke_test(candidate, handler_for(candidate), registry, smoke, policy)
        if failed is not None:
            return failed
        config = self._create_config(candidate)
        if self._exists():
            self.sagemaker.update_endpoint(
                EndpointName=self.serving.endpoint_name,
                EndpointConfigName=config,
                DeploymentConfig=deployment_config(policy, self.alarm_names, self.bake_seconds),
            )
        else:
            self.sagemaker.create_endpoint(EndpointName=self.serving.endpoint_name, EndpointConfigName=config)
        endpoint = self._settle()
        if endpoint.get("EndpointConfigName") == config and endpoint["EndpointStatus"] == "InService":
            return DeploymentOutcome(
                candidate.model_name,
                candidate.version,
                "promoted",
                f"endpoint {self.serving.endpoint_name} serves {config}",
            )
        reason = f"rolled back by SageMaker: endpoint is {endpoint['EndpointStatus']} on {endpoint.get('EndpointConfigName')}"
        if endpoint.get("FailureReason"):
            reason += f" ({endpoint['FailureReason']})"
        registry.set_status(candidate.model_name, candidate.version, ApprovalStatus.REJECTED, reason)
        return DeploymentOutcome(candidate.model_name, candidate.version, "rolled_back", reason)
