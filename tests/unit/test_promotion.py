"""Promotion between environments: local to local, and SageMaker registry to SageMaker registry (moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.bootstrap import bring_up_local
from mlops.settings import load_settings
from pipelines.adapters.aws.artifacts import S3ArtifactStore
from pipelines.adapters.aws.registry import SageMakerRegistry
from pipelines.platform import Platform, connect
from pipelines.ports import ApprovalStatus, ModelCandidate
from pipelines.promotion import PromotionRefused, promote
from tests.aws_emulator import make_bucket


def _local_platform(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Platform:
    monkeypatch.setenv("MLOPS_LOCAL_ROOT", str(root))
    contract = bring_up_local(load_settings("local")).contract.model_copy(update={"environment": name})
    return connect(contract)


def _bundle(tmp_path: Path) -> str:
    directory = tmp_path / "bundle"
    directory.mkdir(exist_ok=True)
    (directory / "weights.pt").write_bytes(b"w")
    return directory.as_uri()


def test_local_promotion_copies_approves_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = _local_platform(tmp_path / "staging", monkeypatch, "staging")
    prod = _local_platform(tmp_path / "prod", monkeypatch, "prod")
    version = staging.registry.register(
        ModelCandidate(
            "churn-model", "run-1", _bundle(tmp_path), {"auc": 0.9}, {"lr": 0.1}, {"git_commit": "abc"}
        )
    )

    with pytest.raises(PromotionRefused, match="PendingManualApproval: only approved versions are promoted"):
        promote(staging, prod, "churn-model", version.version, actor="ci")
    staging.registry.set_status("churn-model", version.version, ApprovalStatus.REJECTED, "failed gates")
    with pytest.raises(PromotionRefused, match="no approved version"):
        promote(staging, prod, "churn-model", actor="ci")

    staging.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED)
    record = promote(staging, prod, "churn-model", actor="release-bot")
    promoted = prod.registry.get("churn-model", record.target_version)
    assert (
        promoted.status == ApprovalStatus.APPROVED
        and "promoted from staging v1 by release-bot" in promoted.status_reason
    )
    assert (
        promoted.lineage["promoted_from"]["environment"] == "staging"
        and promoted.lineage["git_commit"] == "abc"
    )
    assert prod.registry.champion("churn-model").version == record.target_version
    assert Path(promoted.artifact_uri.removeprefix("file://")).is_relative_to(
        tmp_path / "prod"
    )  # copied into prod's store
    assert (
        promote(staging, prod, "churn-model", actor="release-bot").target_version == record.target_version
    )  # idempotent
    records = list((tmp_path / "prod" / "artifacts" / "promotions" / "churn-model").glob("*.json"))
    assert records and json.loads(records[0].read_text())["promoted_by"] == "release-bot"


def test_sagemaker_promotion_between_registries(
    aws: str, kms_key: str, tmp_path: Path, platform: Platform
) -> None:
    def registry(env: str) -> Any:
        return SageMakerRegistry(
            f"mlops-{env}-", S3ArtifactStore(make_bucket(aws, f"mlops-{env}-artifacts"), "", kms_key)
        )

    staging = platform.__class__(
        **{
            **platform.__dict__,
            "registry": registry("staging"),
            "contract": platform.contract.model_copy(update={"environment": "staging"}),
        }
    )
    prod = platform.__class__(
        **{
            **platform.__dict__,
            "registry": registry("prod"),
            "contract": platform.contract.model_copy(update={"environment": "prod"}),
        }
    )
    version = staging.registry.register(
        ModelCandidate(
            "churn-model",
            "run-7",
            "s3://mlops-staging-artifacts/runs/churn-model/run-7/model",
            {"auc": 0.9},
            {},
            {},
        )
    )
    staging.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED)
    record = promote(staging, prod, "churn-model", actor="ci")
    promoted = prod.registry.get("churn-model", record.target_version)
    assert promoted.status == ApprovalStatus.APPROVED
    assert (
        promoted.artifact_uri == "s3://mlops-staging-artifacts/runs/churn-model/run-7/model"
    )  # shared, not copied
    assert promoted.lineage["promoted_from"]["by"] == "ci"


def test_cli_refuses_an_unapproved_model_with_a_clear_message(local_root: Path) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app

    runner = CliRunner()
    runner.invoke(app, ["env", "up", "--env", "local"])
    result = runner.invoke(app, ["promote", "model", "--from", "local", "--to", "local"])
    assert result.exit_code == 1
    assert (
        "churn-model has no approved version in local to promote" in result.output
        and "Traceback" not in result.output
    )
