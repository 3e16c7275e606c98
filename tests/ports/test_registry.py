"""The registry port: the same assertions against SQLite and SageMaker Model Registry (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.adapters.aws.artifacts import S3ArtifactStore
from pipelines.adapters.aws.registry import SageMakerRegistry
from pipelines.adapters.local.registry import RegistryError, SqliteRegistry
from pipelines.ports import ApprovalStatus, ModelCandidate, RegistryPort

from .conftest import aws_client, make_bucket


@pytest.fixture(params=["local", "aws"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> RegistryPort:
    if request.param == "local":
        return SqliteRegistry(tmp_path / "registry.db", tmp_path / "models")
    endpoint = request.getfixturevalue("aws")
    records = S3ArtifactStore(make_bucket(endpoint, "artifacts"), "", request.getfixturevalue("kms_key"))
    return SageMakerRegistry("mlops-dev-", records)


def _candidate(tmp_path: Path, run_key: str, auc: float = 0.8) -> ModelCandidate:
    bundle = tmp_path / "bundles" / run_key
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "weights.pt").write_bytes(run_key.encode())
    lineage = {
        "tables": {"curated.events": 11, "features.activity": 22},
        "git_commit": "abc123",
        "rows": {"train": 10},
    }
    return ModelCandidate(
        "churn",
        run_key,
        bundle.as_uri(),
        {"auc": auc, "log_loss": 0.2},
        {"lr": 0.01, "layers": [64, 32]},
        lineage,
    )


def test_register_is_pending_with_lineage_and_idempotent(registry: RegistryPort, tmp_path: Path) -> None:
    first = registry.register(_candidate(tmp_path, "run-1"))
    assert (first.version, first.status, first.run_key) == (1, ApprovalStatus.PENDING, "run-1")
    assert first.metrics == {"auc": 0.8, "log_loss": 0.2}
    assert first.parameters == {"lr": 0.01, "layers": [64, 32]}
    assert first.lineage["tables"] == {"curated.events": 11, "features.activity": 22}
    assert registry.register(_candidate(tmp_path, "run-1", auc=0.99)).version == 1
    assert registry.register(_candidate(tmp_path, "run-2")).version == 2
    assert [v.version for v in registry.versions("churn")] == [1, 2]
    assert [v.run_key for v in registry.versions()] == ["run-1", "run-2"]


def test_approval_transitions_and_champion(registry: RegistryPort, tmp_path: Path) -> None:
    for key in ("r1", "r2", "r3"):
        registry.register(_candidate(tmp_path, key))
    assert registry.champion("churn") is None
    registry.set_status("churn", 1, ApprovalStatus.APPROVED, "gates passed")
    registry.set_status("churn", 2, ApprovalStatus.APPROVED, "gates passed")
    rejected = registry.set_status("churn", 3, ApprovalStatus.REJECTED, "failed gates: min_auc")
    assert rejected.status == ApprovalStatus.REJECTED and rejected.status_reason == "failed gates: min_auc"
    assert registry.champion("churn").version == 2
    registry.set_status("churn", 2, ApprovalStatus.REJECTED, "rolled back")
    assert registry.champion("churn").version == 1
    registry.set_status("churn", 1, ApprovalStatus.REJECTED, "retired")
    assert registry.champion("churn") is None


def test_unknown_version(registry: RegistryPort, tmp_path: Path) -> None:
    registry.register(_candidate(tmp_path, "r1"))
    with pytest.raises(RegistryError, match="no version 7"):
        registry.get("churn", 7)
    assert registry.champion("other-model") is None
    assert registry.versions("other-model") == []


def test_sagemaker_packages_carry_lineage_in_their_metadata(aws: str, kms_key: str, tmp_path: Path) -> None:
    records = S3ArtifactStore(make_bucket(aws, "records"), "", kms_key)
    SageMakerRegistry("mlops-dev-", records).register(_candidate(tmp_path, "run-9"))
    sagemaker = aws_client(aws, "sagemaker")
    (summary,) = sagemaker.list_model_packages(ModelPackageGroupName="mlops-dev-churn")[
        "ModelPackageSummaryList"
    ]
    metadata = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["mlops:run-key"] == "run-9"
    assert metadata["mlops:snapshot:curated.events"] == "11"
    assert metadata["mlops:git-commit"] == "abc123"
    assert summary["ModelApprovalStatus"] == "PendingManualApproval"
