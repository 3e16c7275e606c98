"""`mlops plan`: the offline plan as a table, as JSON, as a diff; failures exit non-zero."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops.cli import app
from mlops.paths import PACKAGE_ROOT

runner = CliRunner()


def test_plan_lists_every_component_and_passes_the_policy_pack() -> None:
    result = runner.invoke(app, ["plan", "--env", "prod", "--policies"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for component in (
        "Keys",
        "Network",
        "DataLake",
        "BatchCompute",
        "FeatureStore",
        "Registry",
        "Monitoring",
        "Contract",
    ):
        assert f"component {component}" in result.output, component
    assert "mandatory: 0 violation(s)" in result.output and "advisory: 0 violation(s)" in result.output


def test_plan_as_json_carries_the_contract() -> None:
    result = runner.invoke(app, ["plan", "--env", "dev", "--json", "--policies"])
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["outputs"]["platformContract"]["environment"] == "dev"
    assert payload["violations"] == []
    assert any(r["type"] == "aws:batch/jobQueue:JobQueue" for r in payload["resources"])


def test_diff_shows_sizing_and_redundancy() -> None:
    result = runner.invoke(app, ["plan", "--diff", "dev", "prod"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "mlops-<env>-nat-2" in result.output  # NAT per zone in prod only
    assert "vcpus=0..16" in result.output and "vcpus=0..256" in result.output
    assert "retention=14d" in result.output and "retention=365d" in result.output


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder in ("environments", "usecases"):
        shutil.copytree(PACKAGE_ROOT / folder, tmp_path / folder)
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    return tmp_path


def test_plan_with_a_broken_guardrail_exits_non_zero_naming_the_resource(project_copy: Path) -> None:
    path = project_copy / "environments" / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["mlops-blueprint:platform"]["lake"]["bucket_overrides"] = {
        "raw": {"encryption": False}
    }
    path.write_text(yaml.safe_dump(document))
    assert runner.invoke(app, ["plan", "--env", "prod"]).exit_code == 0  # without --policies: inventory only
    result = runner.invoke(app, ["plan", "--env", "prod", "--policies"], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "mandatory: 1 violation(s)" in result.output
    assert (
        "s3-bucket-kms-encryption: mlops-prod-raw: bucket has no default server-side encryption"
        in result.output
    )


def test_plan_with_a_malformed_config_names_the_key(project_copy: Path) -> None:
    path = project_copy / "environments" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("gpu_max_vcpus: 16", "gpu_max_vcpus: lots"))
    result = runner.invoke(app, ["plan", "--env", "dev"])
    assert result.exit_code == 1
    assert (
        "mlops-blueprint:platform.compute.gpu_max_vcpus" in result.output and "Traceback" not in result.output
    )
