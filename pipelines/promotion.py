"""Promotion: an approved model version of one environment becomes a version of another.

Works across any pair of registries (local or SageMaker): the target version keeps the source's
run key (so promoting twice is a no-op), points at the source's artifacts (copied into the target
store by the local registry; shared by the cross-account bucket and package policies in AWS), is
approved in the target with the promotion as its reason, and carries who promoted what, when.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pipelines.platform import Platform
from pipelines.ports import ApprovalStatus, MetricDatum, ModelCandidate, ModelVersion


class PromotionRefused(Exception):
    """The source version is not approved (or does not exist)."""


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


def promoter() -> str:
    """Who is promoting: the CI actor when there is one, else the local user."""
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or getpass.getuser()


def promote(
    source: Platform, target: Platform, model_name: str, version: int | None = None, actor: str | None = None
) -> Promotion:
    """Promote `version` (default: the source champion) of `model_name` from `source` to `target`."""
    chosen: ModelVersion | None = (
        source.registry.champion(model_name) if version is None else source.registry.get(model_name, version)
    )
    if chosen is None:
        raise PromotionRefused(f"{model_name} has no approved version in {source.environment} to promote")
    if chosen.status != ApprovalStatus.APPROVED:
        raise PromotionRefused(
            f"{model_name} v{chosen.version} in {source.environment} is {chosen.status.value}: only approved versions are promoted"
        )
    who, when = actor or promoter(), datetime.now(UTC).isoformat()
    origin = {
        "environment": source.environment,
        "version": chosen.version,
        "artifact_uri": chosen.artifact_uri,
        "by": who,
        "at": when,
    }
    candidate = ModelCandidate(
        model_name=model_name,
        run_key=chosen.run_key,
        artifact_uri=chosen.artifact_uri,
        metrics=chosen.metrics,
        parameters=chosen.parameters,
        lineage={**chosen.lineage, "promoted_from": origin},
    )
    promoted = target.registry.register(candidate)
    promoted = target.registry.set_status(
        model_name,
        promoted.version,
        ApprovalStatus.APPROVED,
        f"promoted from {source.environment} v{chosen.version} by {who}",
    )
    record = Promotion(
        model_name,
        source.environment,
        chosen.version,
        target.environment,
        promoted.version,
        chosen.run_key,
        who,
        when,
    )
    target.artifacts.put_bytes(
        f"promotions/{model_name}/{when.replace(':', '-')}.json",
        json.dumps(asdict(record), indent=2).encode(),
    )
    target.metrics.put(
        [
            MetricDatum(
                "model_promoted",
                1.0,
                {"environment": target.environment, "model": model_name, "from": source.environment},
                "Count",
            )
        ]
    )
    return record
