"""Promotion: an approved model version of one environment becomes an approved version of another.

Two halves, so that no single process needs credentials for both accounts:
`export_approved` (source credentials) writes a promotion package; `import_approved` (target
credentials) verifies it, copies the bundle into the target's artifact store, registers the
version and approves it with the promotion as its reason. `promote` runs both in one process.
The target version keeps the source's run key, so promoting twice is a no-op, and it records who
promoted what, when, in its lineage, in a promotion record and as a metric.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.platform import Platform
from pipelines.ports import ApprovalStatus, MetricDatum, ModelCandidate, ModelVersion
from pipelines.promotion_package import (
    PromotionManifest,
    package_digest,
    read_package,
    write_package,
)
from pipelines.training.bundles import bundle_files


class PromotionRefused(Exception):
    """The version is not approved, does not exist, or the target rejected it before."""


@dataclass(frozen=True)
class Promotion:
    model_name: str
    source_environment: str
    source_version: int
    target_environment: str
    target_version: int
    run_key: str
    promoted_by: str
    promoted_at: str
    package_sha256: str
    already_promoted: bool = False


def promoter() -> str:
    """Who is promoting: the CI actor when there is one, else the local user."""
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or getpass.getuser()


def _approved_version(source: Platform, model_name: str, version: int | None) -> ModelVersion:
    chosen = (
        source.registry.champion(model_name) if version is None else source.registry.get(model_name, version)
    )
    if chosen is None:
        raise PromotionRefused(f"{model_name} has no approved version in {source.environment} to promote")
    if chosen.status != ApprovalStatus.APPROVED:
        raise PromotionRefused(
            f"{model_name} v{chosen.version} in {source.environment} is {chosen.status.value}: "
            "only approved versions are promoted"
        )
    return chosen


def export_approved(
    source: Platform, model_name: str, directory: Path, version: int | None = None, actor: str | None = None
) -> PromotionManifest:
    """Package `version` (default: the champion) of `model_name` from `source` into `directory`."""
    chosen = _approved_version(source, model_name, version)
    try:
        files = bundle_files(chosen.artifact_uri, with_model_as_data=True)
    except (FileNotFoundError, KeyError) as exc:
        raise PromotionRefused(
            f"{model_name} v{chosen.version} in {source.environment}: "
            f"its bundle at {chosen.artifact_uri} is incomplete ({exc})"
        ) from exc
    return write_package(
        directory,
        {
            "model_name": model_name,
            "source_environment": source.environment,
            "source_version": chosen.version,
            "run_key": chosen.run_key,
            "status": chosen.status.value,
            "status_reason": chosen.status_reason,
            "source_artifact_uri": chosen.artifact_uri,
            "metrics": chosen.metrics,
            "parameters": chosen.parameters,
            "lineage": chosen.lineage,
            "exported_by": actor or promoter(),
            "exported_at": datetime.now(UTC).isoformat(),
        },
        files,
    )


def _already_in(target: Platform, manifest: PromotionManifest) -> ModelVersion | None:
    for existing in target.registry.versions(manifest.model_name):
        if existing.run_key == manifest.run_key:
            return existing
    return None


def import_approved(target: Platform, directory: Path, actor: str | None = None) -> Promotion:
    """Register the packaged version in `target`, approved; refuses a package that fails verification."""
    manifest, model_dir = read_package(directory)
    digest, who, when = package_digest(manifest), actor or promoter(), datetime.now(UTC).isoformat()
    existing = _already_in(target, manifest)

    def record_of(target_version: int, already_promoted: bool = False) -> Promotion:
        return Promotion(
            manifest.model_name,
            manifest.source_environment,
            manifest.source_version,
            target.environment,
            target_version,
            manifest.run_key,
            who,
            when,
            digest,
            already_promoted,
        )

    if existing is not None and existing.status == ApprovalStatus.REJECTED:
        raise PromotionRefused(
            f"{manifest.model_name} run {manifest.run_key} is v{existing.version} in {target.environment} and was "
            f"rejected there ({existing.status_reason or 'no reason given'}); a promotion does not overrule that"
        )
    if existing is not None and existing.status == ApprovalStatus.APPROVED:
        return record_of(existing.version, already_promoted=True)
    artifact_uri = target.artifacts.put_tree(
        f"promoted/{manifest.model_name}/{manifest.run_key}/model", model_dir
    )
    origin = {
        "environment": manifest.source_environment,
        "version": manifest.source_version,
        "artifact_uri": manifest.source_artifact_uri,
        "exported_by": manifest.exported_by,
        "exported_at": manifest.exported_at,
        "package_sha256": digest,
        "by": who,
        "at": when,
    }
    registered = target.registry.register(
        ModelCandidate(
            model_name=manifest.model_name,
            run_key=manifest.run_key,
            artifact_uri=artifact_uri,
            metrics=manifest.metrics,
            parameters=manifest.parameters,
            lineage={**manifest.lineage, "promoted_from": origin},
        )
    )
    promoted = target.registry.set_status(
        manifest.model_name,
        registered.version,
        ApprovalStatus.APPROVED,
        f"promoted from {manifest.source_environment} v{manifest.source_version} by {who}",
    )
    record = record_of(promoted.version)
    target.artifacts.put_bytes(
        f"promotions/{manifest.model_name}/{when.replace(':', '-')}.json",
        json.dumps(asdict(record), indent=2).encode(),
    )
    target.metrics.put(
        [
            MetricDatum(
                "model_promoted",
                1.0,
                {
                    "environment": target.environment,
                    "model": manifest.model_name,
                    "from": manifest.source_environment,
                },
                "Count",
            )
        ]
    )
    return record


def promote(
    source: Platform, target: Platform, model_name: str, version: int | None = None, actor: str | None = None
) -> Promotion:
    """Export from `source` and import into `target` in one process (credentials that reach both)."""
    with tempfile.TemporaryDirectory(prefix="mlops-promotion-") as scratch:
        export_approved(source, model_name, Path(scratch), version, actor)
        return import_approved(target, Path(scratch), actor)
