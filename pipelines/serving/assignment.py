"""Sticky assignment of entities to variants: a hash of the entity's key, so a customer sees the
same variant in every request, worker process and restart. The local router uses it, and so do
SageMaker clients choosing a `TargetVariant` (`pipelines.adapters.aws.endpoint.target_variant`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def entity_share(key: object) -> float:
    """Where an entity falls in [0, 1): the same for every request, process and restart."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def sticky_choice(key: object, weights: Sequence[tuple[str, float]]) -> str:
    """The variant (by name) that serves entity `key`: variants in name order each own a band of
    [0, 1) as wide as their share of the positive weights."""
    live = sorted((name, weight) for name, weight in weights if weight > 0)
    if not live:
        raise ValueError("at least one variant with a positive weight is needed")
    point = entity_share(key) * sum(weight for _, weight in live)
    for name, weight in live:
        point -= weight
        if point < 0:
            return name
    return live[-1][0]
