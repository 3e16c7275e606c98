"""The local endpoint: serves whatever the endpoint state says is deployed, reloading it on change."""

from __future__ import annotations

import threading
import time

from pipelines.deployment.endpoint import EndpointState, read_state
from pipelines.deployment.steps import handler_for
from pipelines.serving.app import Variant, VariantRouter
from pipelines.serving.handler import InferenceHandler
from pipelines.training.steps import PipelineContext


class NothingDeployed(Exception):
    """The endpoint state lists no version: deploy one first."""


class LiveRouter(VariantRouter):
    """A VariantRouter whose variants follow the endpoint state (checked every `refresh_seconds`)."""

    def __init__(self, ctx: PipelineContext, refresh_seconds: float = 2.0, seed: int | None = None) -> None:
        self.ctx, self.refresh_seconds = ctx, refresh_seconds
        self.model_name = ctx.model_name
        self._handlers: dict[int, InferenceHandler] = {}
        self._lock = threading.Lock()
        self.state = read_state(ctx.platform.artifacts, self.model_name)
        super().__init__(self._variants(self.state), seed=seed)
        self._checked = time.monotonic()

    def _variants(self, state: EndpointState) -> list[Variant]:
        if not state.variants:
            raise NothingDeployed(f"no version of {self.model_name} is deployed: run `mlops deploy` first")
        variants = []
        for v in state.variants:
            if v.version not in self._handlers:
                self._handlers[v.version] = handler_for(
                    self.ctx, self.ctx.platform.registry.get(self.model_name, v.version)
                )
            variants.append(Variant(v.name, self._handlers[v.version], v.weight))
        return variants

    def refresh(self) -> bool:
        """Reload the endpoint state; True when the served variants changed."""
        state = read_state(self.ctx.platform.artifacts, self.model_name)
        if state == self.state or not state.variants:
            return False
        variants = self._variants(state)
        with self._lock:
            self.variants = {v.name: v for v in variants}
            self.state = state
        return True

    def pick(self, requested: str | None) -> Variant:
        if time.monotonic() - self._checked > self.refresh_seconds:
            self._checked = time.monotonic()
            self.refresh()
        with self._lock:
            return super().pick(requested)
