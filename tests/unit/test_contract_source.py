"""Loading an AWS environment's contract from SSM (moto: no real AWS endpoint is ever called)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlops.bootstrap import local_contract
from mlops.contract import ContractError
from mlops.contract_source import load_platform_contract
from mlops.settings import load_settings


@pytest.fixture
def dev_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "environments").mkdir()
    (tmp_path / "usecases").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(
        "name: dev\nplatform: {kind: aws, region: eu-west-1}\npipeline: {usecase: u.yaml, model_name: m1}\n"
    )
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    return load_settings("dev")


@mock_aws
def test_contract_is_read_from_the_ssm_parameter(dev_settings, local_settings) -> None:
    contract = local_contract(local_settings).model_copy(update={"environment": "dev"})
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/mlops/dev/platform-contract", Value=contract.to_json(), Type="String"
    )
    assert load_platform_contract(dev_settings) == contract


@mock_aws
def test_missing_parameter_is_named(dev_settings) -> None:
    with pytest.raises(ContractError, match="/mlops/dev/platform-contract not found"):
        load_platform_contract(dev_settings)


@mock_aws
def test_malformed_parameter_names_the_field(dev_settings) -> None:
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/mlops/dev/platform-contract", Value='{"environment": "dev"}', Type="String"
    )
    with pytest.raises(ContractError, match=r"SSM parameter /mlops/dev/platform-contract:\n.*lake"):
        load_platform_contract(dev_settings)
