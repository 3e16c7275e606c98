from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.bootstrap import CONTRACT_FILE, bring_up_local, read_local_contract
from mlops.contract import ContractError, LocalLake, PlatformContract, load_contract_file, parse_contract


def test_local_contract_round_trips(local_settings, local_root: Path) -> None:
    contract = bring_up_local(local_settings).contract
    loaded = read_local_contract(local_settings)
    assert loaded == contract
    assert isinstance(loaded.lake, LocalLake)
    assert Path(loaded.lake.warehouse).is_relative_to(local_root)


def test_bring_up_is_idempotent(local_settings, local_root: Path) -> None:
    first = bring_up_local(local_settings)
    before = {p: p.stat().st_mtime_ns for p in local_root.rglob("*") if p.is_file()}
    second = bring_up_local(local_settings)
    after = {
        p: p.stat().st_mtime_ns
        for p in local_root.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
    assert first.changed and not second.changed
    assert second.created_dirs == []
    assert (local_root / CONTRACT_FILE).stat().st_mtime_ns == before[local_root / CONTRACT_FILE]
    assert set(after) <= set(before)


def test_missing_contract_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="mlops env up"):
        load_contract_file(tmp_path / "contract.json")


def test_malformed_contract_names_the_field(local_settings) -> None:
    path = bring_up_local(local_settings).contract_path
    payload = json.loads(path.read_text())
    del payload["registry"]["database"]
    payload["lake"]["kind"] = "azure"
    path.write_text(json.dumps(payload))
    with pytest.raises(ContractError) as error:
        load_contract_file(path)
    message = str(error.value)
    assert "registry.local.database" in message
    assert "lake" in message and "azure" in message


def test_contract_that_is_not_json_is_reported() -> None:
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_contract("{oops", "test")


def test_contract_rejects_unknown_fields(local_settings) -> None:
    payload = bring_up_local(local_settings).contract.model_dump(mode="json")
    payload["surprise"] = 1
    with pytest.raises(ContractError, match="surprise"):
        parse_contract(json.dumps(payload), "test")


def test_aws_contract_validates() -> None:
    contract = PlatformContract.model_validate(
        {
            "environment": "dev",
            "region": "eu-west-1",
            "lake": {
                "kind": "aws",
                "raw_bucket": "r",
                "curated_bucket": "c",
                "quarantine_bucket": "q",
                "glue_database": "g",
                "kms_key_id": "k",
            },
            "artifacts": {"kind": "aws", "bucket": "a", "kms_key_id": "k"},
            "feature_store": {
                "kind": "aws",
                "offline_namespace": "features",
                "feature_group_prefix": "dev",
                "kms_key_id": "k",
            },
            "tracking": {
                "kind": "aws",
                "tracking_server_arn": "arn:aws:sagemaker:eu-west-1:1:mlflow-tracking-server/x",
            },
            "registry": {"kind": "aws", "model_package_group_prefix": "dev"},
            "compute": {
                "kind": "aws",
                "gpu_job_queue": "g",
                "cpu_job_queue": "c",
                "training_job_definition": "t",
                "image_uri": "1.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev-training:abc",
            },
            "monitoring": {
                "kind": "aws",
                "namespace": "mlops/dev",
                "sns_topic_arn": "arn:aws:sns:eu-west-1:1:t",
            },
            "serving": {
                "kind": "aws",
                "endpoint_name": "mlops-dev-endpoint",
                "execution_role_arn": "arn:aws:iam::1:role/x",
                "image_uri": "1.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev-serving:1",
                "data_capture_uri": "s3://c/data-capture",
                "kms_key_id": "k",
            },
            "orchestrator": {"work_pool": "dev-k8s"},
        }
    )
    assert contract.lake.kind == "aws"
    assert parse_contract(contract.to_json(), "round trip") == contract
