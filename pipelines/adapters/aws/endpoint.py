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
from pipelines.deployment.endpoint import EndpointState, ServingVariant, write_state
from pipelines.deployment.guarded import CanaryPolicy, DeploymentOutcome, gate_on_smoke_test
from pipelines.errors import ExperimentError
from pipelines.ports import ApprovalStatus, ArtifactStore, ModelVersion, RegistryPort
from pipelines.serving.assignment import sticky_choice
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

    def _create_model(self, version: ModelVersion, stamp: str) -> str:
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
        return model

    def _create_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
        """An endpoint config serving (variant name, model, weight) each, with data capture on."""
        config = f"{name}-config"
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            KmsKeyId=self.serving.kms_key_id,
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": self.serving.instance_count,
                    "InstanceType": self.serving.instance_type,
                    "InitialVariantWeight": weight,
                }
                for variant, model, weight in variants
            ],
            DataCaptureConfig={
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": self.serving.data_capture_uri,
                "KmsKeyId": self.serving.kms_key_id,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                # Bodies kept as text (not base64) so the capture files are readable as they are.
                "CaptureContentTypeHeader": {
                    "CsvContentTypes": ["text/csv"],
                    "JsonContentTypes": ["application/json"],
                },
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
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        model = self._create_model(candidate, stamp)
        config = self._create_config(model, [(VARIANT, model, 1.0)])
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
            # The record monitoring and experiments read: which version is live.
            write_state(
                store,
                EndpointState(
                    candidate.model_name,
                    [ServingVariant(f"v{candidate.version}", candidate.version, 1.0)],
                ),
            )
            return DeploymentOutcome(
                candidate.model_name,
                candidate.version,
                "promoted",
                f"endpoint {self.serving.endpoint_name} serves {config}",
            )
        reason = f"rolled back by SageMaker: endpoint is {_status(endpoint)}"
        registry.set_status(candidate.model_name, candidate.version, ApprovalStatus.REJECTED, reason)
        return DeploymentOutcome(candidate.model_name, candidate.version, "rolled_back", reason)

    def route(self, state: EndpointState, registry: RegistryPort, store: ArtifactStore) -> str:
        """Serve `state`'s variants as production variants with its weights (an experiment's split),
        all at once: SageMaker's guarded updates need the same variant names on both sides, so they
        are kept for deployments. The first variant (the champion) keeps the name `AllTraffic` the
        alarms and the dashboard watch."""
        if not self._exists():
            raise ExperimentError(
                f"endpoint {self.serving.endpoint_name} does not exist: deploy a champion first (mlops deploy)"
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        names = variant_names(state)
        served = [
            (names[v.name], self._create_model(registry.get(state.model_name, v.version), stamp), v.weight)
            for v in state.variants
            if v.weight > 0
        ]
        config = self._create_config(f"{served[0][1]}-split", served)
        self.sagemaker.update_endpoint(EndpointName=self.serving.endpoint_name, EndpointConfigName=config)
        endpoint = self._settle()
        if endpoint.get("EndpointConfigName") != config or endpoint["EndpointStatus"] != "InService":
            raise ExperimentError(
                f"endpoint {self.serving.endpoint_name} did not take {config}: it is {_status(endpoint)}"
            )
        write_state(store, state)
        split = ", ".join(
            f"{names[v.name]} v{v.version} {v.weight:.0%}" for v in state.variants if v.weight > 0
        )
        return f"endpoint {self.serving.endpoint_name} serves {config}: {split}"


def _status(endpoint: dict[str, Any]) -> str:
    """Where a described endpoint stands: its status, its config, and SageMaker's reason if any."""
    status = f"{endpoint['EndpointStatus']} on {endpoint.get('EndpointConfigName')}"
    return status + (f" ({endpoint['FailureReason']})" if endpoint.get("FailureReason") else "")


def variant_names(state: EndpointState) -> dict[str, str]:
    """SageMaker's name for each of `state`'s variants: the first (the champion) `AllTraffic`, the
    others `Challenger`, `Challenger2`, ..."""
    names = {}
    for position, variant in enumerate(state.variants):
        names[variant.name] = (
            VARIANT if position == 0 else "Challenger" + (str(position) if position > 1 else "")
        )
    return names


def target_variant(state: EndpointState, key: object) -> str:
    """The `TargetVariant` a client names in InvokeEndpoint so that entity `key` sees the arm the
    experiment assigns it: SageMaker splits by weight per request, not by entity."""
    chosen = sticky_choice(key, [(v.name, v.weight) for v in state.variants])
    return variant_names(state)[chosen]
