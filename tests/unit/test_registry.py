from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.adapters.local.registry import RegistryError, SqliteRegistry
from pipelines.ports import ApprovalStatus, ModelCandidate


@pytest.fixture
def registry(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "registry.db", tmp_path / "models")


def _candidate(tmp_path: Path, run_key: str, auc: float = 0.8) -> ModelCandidate:
    bundle = tmp_path / "bundles" / run_key
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "weights.pt").write_bytes(run_key.encode())
    return ModelCandidate(
        "churn",
        run_key,
        bundle.as_uri(),
        {"auc": auc},
        {"lr": 0.1},
        {"tables": {"curated.x": 1}, "git_commit": "abc"},
    )


def test_register_creates_pending_versions_in_order(registry: SqliteRegistry, tmp_path: Path) -> None:
    one = registry.register(_candidate(tmp_path, "r1"))
    two = registry.register(_candidate(tmp_path, "r2"))
    assert (one.version, two.version) == (1, 2)
    assert one.status == ApprovalStatus.PENDING
    assert one.lineage == {"tables": {"curated.x": 1}, "git_commit": "abc"}
    assert registry.champion("churn") is None


def test_registering_the_same_run_twice_returns_the_same_version(
    registry: SqliteRegistry, tmp_path: Path
) -> None:
    first = registry.register(_candidate(tmp_path, "r1"))
    second = registry.register(_candidate(tmp_path, "r1", auc=0.9))
    assert second == first
    assert len(registry.versions("churn")) == 1


def test_bundle_is_copied_so_versions_are_immutable(registry: SqliteRegistry, tmp_path: Path) -> None:
    candidate = _candidate(tmp_path, "r1")
    version = registry.register(candidate)
    (Path(candidate.artifact_uri.removeprefix("file://")) / "weights.pt").write_bytes(b"changed later")
    assert (Path(version.artifact_uri.removeprefix("file://")) / "weights.pt").read_bytes() == b"r1"


def test_champion_follows_approvals_and_falls_back_on_rejection(
    registry: SqliteRegistry, tmp_path: Path
) -> None:
    for key in ("r1", "r2", "r3"):
        registry.register(_candidate(tmp_path, key))
    registry.set_status("churn", 1, ApprovalStatus.APPROVED)
    registry.set_status("churn", 2, ApprovalStatus.APPROVED)
    registry.set_status("churn", 3, ApprovalStatus.REJECTED, "failed gates: min_auc")
    assert registry.champion("churn").version == 2
    assert registry.get("churn", 3).status_reason == "failed gates: min_auc"
    registry.set_status("churn", 2, ApprovalStatus.REJECTED, "rolled back")
    assert registry.champion("churn").version == 1
    registry.set_status("churn", 1, ApprovalStatus.REJECTED)
    assert registry.champion("churn") is None


def test_unknown_version_is_a_clear_error(registry: SqliteRegistry) -> None:
    with pytest.raises(RegistryError, match="no version 7"):
        registry.get("churn", 7)


def test_missing_bundle_is_refused(registry: SqliteRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register(ModelCandidate("churn", "r9", (tmp_path / "nope").as_uri(), {}, {}, {}))
