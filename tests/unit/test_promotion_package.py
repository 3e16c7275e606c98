"""The promotion package refuses anything incomplete or altered, and names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.promotion_package import (
    MANIFEST_FILE,
    InvalidPackage,
    package_digest,
    read_package,
    write_package,
)

FIELDS = {
    "model_name": "churn-model",
    "source_environment": "staging",
    "source_version": 3,
    "run_key": "run-3",
    "status": "Approved",
    "source_artifact_uri": "s3://mlops-staging-artifacts/runs/run-3/model",
    "metrics": {"auc": 0.88},
    "parameters": {"lr": 0.003},
    "lineage": {"git_commit": "abc"},
    "exported_by": "ci",
    "exported_at": "2026-11-24T00:00:00+00:00",
}
FILES = {"weights.pt": b"\x00weights", "bundle.json": b"{}"}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    write_package(tmp_path / "pkg", FIELDS, FILES)
    return tmp_path / "pkg"


def test_a_written_package_reads_back_verified(package: Path) -> None:
    manifest, model_dir = read_package(package)
    assert manifest.run_key == "run-3" and {f.name: f.size for f in manifest.files} == {
        "weights.pt": 8,
        "bundle.json": 2,
    }
    assert (model_dir / "weights.pt").read_bytes() == FILES["weights.pt"]
    assert len(package_digest(manifest)) == 64


def test_a_directory_without_manifest_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackage, match=r"manifest\.json is missing"):
        read_package(tmp_path)


def test_an_altered_file_is_refused(package: Path) -> None:
    (package / "model" / "weights.pt").write_bytes(b"\x00weightz")
    with pytest.raises(InvalidPackage, match=r"weights\.pt does not match its SHA-256"):
        read_package(package)


def test_a_missing_or_unlisted_file_is_refused(package: Path) -> None:
    (package / "model" / "notes.txt").write_text("hi")
    with pytest.raises(InvalidPackage, match=r"files the manifest does not list: notes\.txt"):
        read_package(package)
    (package / "model" / "notes.txt").unlink()
    (package / "model" / "bundle.json").unlink()
    with pytest.raises(InvalidPackage, match=r"bundle\.json is listed in the manifest but missing"):
        read_package(package)


def test_a_manifest_for_an_unapproved_version_names_the_field(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["status"] = "PendingManualApproval"
    del manifest["run_key"]
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(InvalidPackage) as refused:
        read_package(package)
    assert "  status: Input should be 'Approved'" in str(refused.value)
    assert "  run_key: Field required" in str(refused.value)


def test_exporting_twice_into_one_directory_leaves_only_the_second_package(package: Path) -> None:
    write_package(package, {**FIELDS, "source_version": 4, "run_key": "run-4"}, {"weights.pt": b"v4"})
    manifest, model_dir = read_package(package)
    assert manifest.run_key == "run-4" and sorted(p.name for p in model_dir.iterdir()) == ["weights.pt"]
