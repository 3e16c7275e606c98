"""The live endpoint's state: which registered versions serve, with which traffic weights.

Kept as a small JSON document in the artifact store (`endpoints/<model>.json`); the local server
reloads it when it changes, so a deployment shifts traffic without a restart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from pipelines.ports import ArtifactStore


@dataclass(frozen=True)
class ServingVariant:
    name: str
    version: int
    weight: float


@dataclass(frozen=True)
class EndpointState:
    model_name: str
    variants: list[ServingVariant] = field(default_factory=list)
    assignment: str = "random"  # random: by weight per request; sticky: by entity, for experiments

    def live_version(self) -> int | None:
        """The version taking most traffic (the champion), if any."""
        live = [v for v in self.variants if v.weight > 0]
        return max(live, key=lambda v: v.weight).version if live else None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode()


def state_key(model_name: str) -> str:
    return f"endpoints/{model_name}.json"


def read_state(store: ArtifactStore, model_name: str) -> EndpointState:
    if not store.exists(state_key(model_name)):
        return EndpointState(model_name)
    raw = json.loads(store.get_bytes(state_key(model_name)))
    return EndpointState(
        raw["model_name"], [ServingVariant(**v) for v in raw["variants"]], raw.get("assignment", "random")
    )


def write_state(store: ArtifactStore, state: EndpointState) -> str:
    return store.put_bytes(state_key(state.model_name), state.to_json())
