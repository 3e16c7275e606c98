"""Registering a trained bundle as approved versions, for the serving and deployment tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.ports import ApprovalStatus, ModelCandidate, ModelVersion


def register_approved(
    platform: Any, bundle: Any, directory: Path, run_keys: tuple[str, ...] = ("r1",)
) -> list[ModelVersion]:
    """Write `bundle` to `directory` and register one approved version of churn-model per run key."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, payload in bundle.to_files().items():
        (directory / name).write_bytes(payload)
    versions = []
    for key in run_keys:
        version = platform.registry.register(
            ModelCandidate("churn-model", key, directory.as_uri(), {"auc": 0.8}, {}, {})
        )
        versions.append(platform.registry.set_status("churn-model", version.version, ApprovalStatus.APPROVED))
    return versions
