"""A/B experiments on SageMaker: the split is two production variants with the experiment's weights
(botocore's Stubber, since moto does not implement UpdateEndpoint, and every call is checked
against botocore's service model), the champion keeps the variant name the alarms watch, clients
get the same sticky arm the local router gives, and a split the endpoint refuses changes nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from pipelines.adapters.aws.endpoint import SageMakerDeployer, target_variant
from pipelines.deployment.endpoint import EndpointState, ServingVariant, read_state, write_state
from pipelines.errors import ExperimentError
from pipelines.experiments.state import read_experiment, start_experiment, stop_experiment
from pipelines.serving.app import Variant, VariantRouter
from tests.registry_helpers import register_approved
from tests.serving.test_sagemaker_deploy import ALARMS, SERVING

ENDPOINT = {
    "EndpointName": "mlops-dev-endpoint",
    "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/mlops-dev-endpoint",
    "CreationTime": datetime(2025, 1, 1),
    "LastModifiedTime": datetime(2025, 1, 1),
}


class NamedConfig(SageMakerDeployer):
    """Names its endpoint config `split-config`, so the stubbed endpoint can report it live."""

    def _create_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
        super()._create_config(name, variants)
        return "split-config"


def _expect_split(stub: Stubber, versions_weights: list[tuple[int, float]], final: str, status: str) -> None:
    stub.add_response(
        "describe_endpoint",
        {**ENDPOINT, "EndpointConfigName": "old-config", "EndpointStatus": "InService"},
        {"EndpointName": "mlops-dev-endpoint"},
    )
    for version, _ in versions_weights:
        stub.add_response(
            "create_model",
            {"ModelArn": f"arn:aws:sagemaker:eu-west-1:1:model/v{version}"},
            {
                "ModelName": ANY,
                "ExecutionRoleArn": SERVING.execution_role_arn,
                "EnableNetworkIsolation": True,
                "PrimaryContainer": {
                    "Image": SERVING.image_uri,
                    "ModelDataSource": ANY,
                    "Environment": {"MLOPS_MODEL_VERSION": str(version), "MLOPS_ENVIRONMENT": "dev"},
                },
            },
        )
    names = ["AllTraffic", "Challenger"]
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/split-config"},
        {
            "EndpointConfigName": ANY,
            "KmsKeyId": SERVING.kms_key_id,
            "ProductionVariants": [
                {
                    "VariantName": names[position],
                    "ModelName": ANY,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": weight,
                }
                for position, (_, weight) in enumerate(versions_weights)
            ],
            "DataCaptureConfig": ANY,
        },
    )
    # All at once, with no DeploymentConfig: SageMaker's guarded updates need the same variant names.
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT["EndpointArn"]},
        {"EndpointName": "mlops-dev-endpoint", "EndpointConfigName": "split-config"},
    )
    stub.add_response(
        "describe_endpoint",
        {**ENDPOINT, "EndpointConfigName": final, "EndpointStatus": status},
        {"EndpointName": "mlops-dev-endpoint"},
    )


@pytest.fixture
def live_v1(platform: Any, trained: tuple[Any, pd.DataFrame], tmp_path: Path) -> Any:
    register_approved(platform, trained[0], tmp_path / "bundle", ("r1", "r2"))
    write_state(platform.artifacts, EndpointState("churn-model", [ServingVariant("v1", 1, 1.0)]))
    return platform


def _deployer() -> tuple[SageMakerDeployer, Stubber]:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    stub = Stubber(sagemaker)
    deployer = NamedConfig(SERVING, ALARMS, "dev", sagemaker=sagemaker, sleep=lambda _: None)
    return deployer, stub


def test_an_experiment_is_two_weighted_production_variants_and_stopping_returns_to_one(live_v1: Any) -> None:
    platform = live_v1
    deployer, stub = _deployer()
    _expect_split(stub, [(1, 0.7), (2, 0.3)], "split-config", "InService")
    _expect_split(stub, [(1, 1.0)], "split-config", "InService")
    stub.activate()

    started = start_experiment(deployer, platform.artifacts, platform.registry, "churn-model", 2, share=0.3)
    state = read_state(platform.artifacts, "churn-model")
    assert state.assignment == "sticky"
    assert [(v.name, v.version, v.weight) for v in state.variants] == [
        ("v1", 1, 0.7),
        ("v2", 2, pytest.approx(0.3)),
    ]
    assert started.arms == ("v1", "v2")

    stop_experiment(deployer, platform.artifacts, platform.registry, "churn-model", "keep")
    assert [(v.name, v.weight) for v in read_state(platform.artifacts, "churn-model").variants] == [
        ("v1", 1.0)
    ]
    stub.assert_no_pending_responses()


def test_a_split_the_endpoint_does_not_take_changes_nothing(live_v1: Any) -> None:
    platform = live_v1
    deployer, stub = _deployer()
    _expect_split(stub, [(1, 0.5), (2, 0.5)], "old-config", "Failed")
    stub.activate()
    with pytest.raises(ExperimentError, match="did not take split-config: it is Failed on old-config"):
        start_experiment(deployer, platform.artifacts, platform.registry, "churn-model", 2)
    assert read_experiment(platform.artifacts, "churn-model") is None
    assert [(v.name, v.weight) for v in read_state(platform.artifacts, "churn-model").variants] == [
        ("v1", 1.0)
    ]


def test_without_an_endpoint_an_experiment_is_refused_in_one_line(live_v1: Any) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    stub = Stubber(sagemaker)
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    stub.activate()
    deployer = SageMakerDeployer(SERVING, ALARMS, "dev", sagemaker=sagemaker)
    with pytest.raises(
        ExperimentError, match="endpoint mlops-dev-endpoint does not exist: deploy a champion first"
    ):
        start_experiment(deployer, live_v1.artifacts, live_v1.registry, "churn-model", 2)


def test_clients_name_the_same_sticky_arm_the_local_router_picks(trained: tuple[Any, pd.DataFrame]) -> None:
    state = EndpointState("m", [ServingVariant("v9", 9, 0.7), ServingVariant("v10", 10, 0.3)], "sticky")
    router = VariantRouter(
        [Variant(v.name, handler=None, weight=v.weight) for v in state.variants], sticky=True
    )  # type: ignore[arg-type]
    sagemaker_name = {"v9": "AllTraffic", "v10": "Challenger"}
    keys = [f"C{i:06d}" for i in range(4_000)]
    arms = [target_variant(state, key) for key in keys]
    assert arms == [sagemaker_name[router.pick(None, key).name] for key in keys]
    assert arms.count("Challenger") / len(keys) == pytest.approx(0.3, abs=0.03)
    assert arms == [target_variant(state, key) for key in keys]  # sticky: the same every time
