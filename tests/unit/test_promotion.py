"""Promotion between environments: local to local, and across two AWS accounts (moto) by package."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.bootstrap import bring_up_local
from mlops.settings import load_settings
from pipelines.adapters.aws.artifacts import S3ArtifactStore
from pipelines.adapters.aws.metrics import CloudWatchMetrics
from pipelines.adapters.aws.registry import SageMakerRegistry
from pipelines.platform import Platform, connect
from pipelines.ports import ApprovalStatus, ModelCandidate
from pipelines.promotion import PromotionRefused, export_approved, import_approved, promote
from pipelines.promotion_package import InvalidPackage
from pipelines.training.bundles import load_bundle
from tests.aws_emulator import aws_client, credentials_for_account, make_bucket

STAGING_ACCOUNT, PROD_ACCOUNT = "111111111111", "222222222222"


def _local_platform(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Platform:
    monkeypatch.setenv("MLOPS_LOCAL_ROOT", str(root))
    contract = bring_up_local(load_settings("local")).contract.model_copy(update={"environment": name})
    return connect(contract)


def _bundle(tmp_path: Path) -> str:
    directory = tmp_path / "bundle"
    directory.mkdir(exist_ok=True)
    (directory / "weights.pt").write_bytes(b"w")
    (directory / "bundle.json").write_text("{}")
    (directory / "model.onnx").write_bytes(b"onnx")  # the model as data travels with the bundle
    (directory / "model.schema.json").write_text("{}")
    return directory.as_uri()


def _candidate(artifact_uri: str, run_key: str = "run-1") -> ModelCandidate:
    return ModelCandidate(
        "churn-model", run_key, artifact_uri, {"auc": 0.9}, {"lr": 0.1}, {"git_commit": "abc"}
    )


@pytest.fixture
def approved_in_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Platform, Platform]:
    """Two local environments; staging holds one approved version (run-1)."""
    staging = _local_platform(tmp_path / "staging", monkeypatch, "staging")
    prod = _local_platform(tmp_path / "prod", monkeypatch, "prod")
    version = staging.registry.register(_candidate(_bundle(tmp_path)))
    staging.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED)
    return staging, prod


def test_local_promotion_copies_approves_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = _local_platform(tmp_path / "staging", monkeypatch, "staging")
    prod = _local_platform(tmp_path / "prod", monkeypatch, "prod")
    version = staging.registry.register(_candidate(_bundle(tmp_path)))

    with pytest.raises(PromotionRefused, match="PendingManualApproval: only approved versions are promoted"):
        promote(staging, prod, "churn-model", version.version, actor="ci")
    staging.registry.set_status("churn-model", version.version, ApprovalStatus.REJECTED, "failed gates")
    with pytest.raises(PromotionRefused, match="no approved version"):
        promote(staging, prod, "churn-model", actor="ci")
    assert prod.registry.versions("churn-model") == []

    staging.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED)
    record = promote(staging, prod, "churn-model", actor="release-bot")
    promoted = prod.registry.get("churn-model", record.target_version)
    assert (
        promoted.status == ApprovalStatus.APPROVED
        and "promoted from staging v1 by release-bot" in promoted.status_reason
    )
    origin = promoted.lineage["promoted_from"]
    assert origin["environment"] == "staging" and origin["package_sha256"] == record.package_sha256
    assert promoted.lineage["git_commit"] == "abc" and promoted.run_key == "run-1"
    assert prod.registry.champion("churn-model").version == record.target_version
    assert Path(promoted.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "prod")
    promoted_files = {p.name for p in Path(promoted.artifact_uri.removeprefix("file://")).iterdir()}
    assert {"weights.pt", "bundle.json", "model.onnx", "model.schema.json"} <= promoted_files

    again = promote(staging, prod, "churn-model", actor="release-bot")
    assert again.already_promoted and again.target_version == record.target_version
    records = list((tmp_path / "prod" / "artifacts" / "promotions" / "churn-model").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["promoted_by"] == "release-bot"


def test_an_altered_package_changes_nothing_in_the_target(
    tmp_path: Path, approved_in_staging: tuple[Platform, Platform]
) -> None:
    staging, prod = approved_in_staging
    export_approved(staging, "churn-model", tmp_path / "pkg", actor="ci")
    (tmp_path / "pkg" / "model" / "bundle.json").write_text('{"label": "something else"}')

    with pytest.raises(InvalidPackage, match="the package was altered"):
        import_approved(prod, tmp_path / "pkg", actor="ci")
    assert prod.registry.versions("churn-model") == []
    assert not (tmp_path / "prod" / "artifacts" / "promoted").exists()
    assert list(prod.metrics.query("model_promoted")) == []


def test_a_version_the_target_rejected_is_not_reapproved_by_promotion(
    approved_in_staging: tuple[Platform, Platform],
) -> None:
    staging, prod = approved_in_staging
    first = promote(staging, prod, "churn-model", actor="ci")
    prod.registry.set_status("churn-model", first.target_version, ApprovalStatus.REJECTED, "bad canary")

    with pytest.raises(PromotionRefused, match="rejected there \\(bad canary\\)"):
        promote(staging, prod, "churn-model", actor="ci")
    assert prod.registry.get("churn-model", first.target_version).status == ApprovalStatus.REJECTED
    assert prod.registry.champion("churn-model") is None


def _sagemaker_platform(base: Platform, env: str, endpoint: str, kms_key: str) -> Platform:
    """An environment's registry, artifacts and metrics in whichever account the current credentials are for."""
    artifacts = S3ArtifactStore(make_bucket(endpoint, f"mlops-{env}-artifacts"), "", kms_key)
    return dataclasses.replace(
        base,
        contract=base.contract.model_copy(update={"environment": env}),
        artifacts=artifacts,
        registry=SageMakerRegistry(f"mlops-{env}-", artifacts),
        metrics=CloudWatchMetrics(f"mlops/{env}"),
    )


def test_promotion_across_accounts_needs_only_the_package(
    aws: str, tmp_path: Path, platform: Platform, trained: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging's credentials export, prod's import: prod never reads staging, and gets its own copy."""
    bundle, test_rows = trained

    def use_account(account: str) -> str:
        """Credentials for `account`, as a CI job's OIDC role would give; returns a KMS key there."""
        for name, value in credentials_for_account(aws, account).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # boto3 caches the credentials it resolved
        return str(aws_client(aws, "kms").create_key(Description=account)["KeyMetadata"]["Arn"])

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    staging = _sagemaker_platform(platform, "staging", aws, use_account(STAGING_ACCOUNT))
    model_uri = staging.artifacts.put_bytes(
        "runs/churn-model/run-7/model/weights.pt", bundle.to_files()["weights.pt"]
    )
    staging.artifacts.put_bytes("runs/churn-model/run-7/model/bundle.json", bundle.to_files()["bundle.json"])
    version = staging.registry.register(_candidate(model_uri.rsplit("/", 1)[0], "run-7"))
    with pytest.raises(PromotionRefused, match="only approved versions"):
        export_approved(staging, "churn-model", tmp_path / "package", version.version, actor="ci")
    staging.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED, "gates passed")
    manifest = export_approved(staging, "churn-model", tmp_path / "package", actor="staging-job")
    assert manifest.source_version == version.version and {f.name for f in manifest.files} == {
        "weights.pt",
        "bundle.json",
    }
    # Staging's copy disappears: the import can only succeed from the package itself.
    staging_s3 = aws_client(aws, "s3")
    for item in staging_s3.list_objects_v2(Bucket="mlops-staging-artifacts")["Contents"]:
        staging_s3.delete_object(Bucket="mlops-staging-artifacts", Key=item["Key"])

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    prod = _sagemaker_platform(platform, "prod", aws, use_account(PROD_ACCOUNT))
    assert aws_client(aws, "sts").get_caller_identity()["Account"] == PROD_ACCOUNT
    record = import_approved(prod, tmp_path / "package", actor="prod-job")

    promoted = prod.registry.get("churn-model", record.target_version)
    assert promoted.status == ApprovalStatus.APPROVED and promoted.artifact_uri.startswith(
        "s3://mlops-prod-artifacts/promoted/churn-model/run-7/"
    )
    assert promoted.lineage["promoted_from"]["exported_by"] == "staging-job"
    assert promoted.lineage["promoted_from"]["by"] == "prod-job"
    np.testing.assert_array_equal(
        load_bundle(promoted.artifact_uri).predict_proba(test_rows), bundle.predict_proba(test_rows)
    )
    groups = aws_client(aws, "sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in groups] == [
        "mlops-prod-churn-model"
    ]  # written in prod's account
    assert [d.value for d in prod.metrics.query("model_promoted")] == [1.0]
    assert import_approved(prod, tmp_path / "package", actor="prod-job").already_promoted


def test_cli_refuses_an_unapproved_model_with_a_clear_message(local_root: Path) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app

    runner = CliRunner()
    runner.invoke(app, ["env", "up", "--env", "local"])
    for args in (
        ["model", "--from", "local", "--to", "local"],
        ["export", "--from", "local", "--out", "pkg"],
    ):
        result = runner.invoke(app, ["promote", *args])
        assert result.exit_code == 1
        assert (
            "churn-model has no approved version in local to promote" in result.output
            and "Traceback" not in result.output
        )


def test_cli_export_then_import_into_another_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The release workflow's two steps, with two local roots standing in for two accounts."""
    from typer.testing import CliRunner

    from mlops.cli import app

    source = _local_platform(tmp_path / "source", monkeypatch, "local")
    source.registry.set_status(
        "churn-model",
        source.registry.register(_candidate(_bundle(tmp_path))).version,
        ApprovalStatus.APPROVED,
    )
    runner = CliRunner()
    exported = runner.invoke(app, ["promote", "export", "--from", "local", "--out", str(tmp_path / "pkg")])
    assert exported.exit_code == 0, exported.output
    assert f"exported churn-model v1 (local, run run-1) to {tmp_path / 'pkg'}" in exported.output

    monkeypatch.setenv("MLOPS_LOCAL_ROOT", str(tmp_path / "target"))
    runner.invoke(app, ["env", "up", "--env", "local"])
    imported = runner.invoke(app, ["promote", "import", "--to", "local", "--package", str(tmp_path / "pkg")])
    assert imported.exit_code == 0, imported.output
    assert "promoted churn-model v1 (local) → v1 (local)" in imported.output
    target = connect(bring_up_local(load_settings("local")).contract)
    assert target.registry.champion("churn-model").run_key == "run-1"

    (tmp_path / "pkg" / "model" / "weights.pt").write_bytes(b"tampered")
    refused = runner.invoke(app, ["promote", "import", "--to", "local", "--package", str(tmp_path / "pkg")])
    assert refused.exit_code == 1 and "the package was altered" in refused.output


@pytest.mark.usefixtures("prefect_harness")
def test_promotion_flow_reports_the_promotion(local_root: Path) -> None:
    from pipelines.flows.promotion import promotion_flow

    platform = connect(bring_up_local(load_settings("local")).contract)
    platform.registry.set_status(
        "churn-model",
        platform.registry.register(_candidate(_bundle(local_root))).version,
        ApprovalStatus.APPROVED,
    )
    summary = promotion_flow(source="local", target="local")
    assert summary["run_key"] == "run-1" and summary["already_promoted"]  # same registry: nothing to do
    assert len(summary["package_sha256"]) == 64
