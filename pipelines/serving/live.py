"""The local endpoint: serves whatever the endpoint state says is deployed, reloading it on change."""

from __future__ import annotations

import logging
import os
import threading

from fastapi import FastAPI

from pipelines.deployment.endpoint import EndpointState, read_state
from pipelines.deployment.steps import handler_for
from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.capture import LakeCapture
from pipelines.serving.handler import InferenceHandler
from pipelines.training.steps import PipelineContext, open_environment

log = logging.getLogger(__name__)

# What `mlops serve` hands each worker process (workers are started fresh, so by environment).
SERVE_ENVIRONMENT, SERVE_CAPTURE = "MLOPS_SERVE_ENVIRONMENT", "MLOPS_SERVE_CAPTURE"


class NothingDeployed(Exception):
    """The endpoint state lists no version: deploy one first."""


class LiveRouter(VariantRouter):
    """A VariantRouter whose variants follow the endpoint state, checked every `refresh_seconds` by a
    background thread: a request never waits for a state read or a new model's load."""

    def __init__(self, ctx: PipelineContext, refresh_seconds: float = 2.0, seed: int | None = None) -> None:
        self.ctx, self.refresh_seconds = ctx, refresh_seconds
        self.model_name = ctx.model_name
        self._handlers: dict[int, InferenceHandler] = {}
        self._lock = threading.Lock()
        self.state = read_state(ctx.platform.artifacts, self.model_name)
        super().__init__(self._variants(self.state), seed=seed, sticky=self.state.assignment == "sticky")
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="endpoint-state", daemon=True)
        self._watcher.start()

    def _variants(self, state: EndpointState) -> list[Variant]:
        require_deployed(state)
        variants = []
        for v in state.variants:
            if v.version not in self._handlers:
                self._handlers[v.version] = handler_for(
                    self.ctx, self.ctx.platform.registry.get(self.model_name, v.version)
                )
            variants.append(Variant(v.name, self._handlers[v.version], v.weight, str(v.version)))
        return variants

    def refresh(self) -> bool:
        """Reload the endpoint state; True when the served variants changed."""
        state = read_state(self.ctx.platform.artifacts, self.model_name)
        if state == self.state or not state.variants:
            return False
        variants = self._variants(state)  # new models load here, outside the lock
        with self._lock:
            self.variants = {v.name: v for v in variants}
            self.sticky = state.assignment == "sticky"
            self.state = state
        return True

    def _watch(self) -> None:
        while not self._stopped.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a bad state or model keeps the current variants serving
                log.exception("endpoint state not reloaded; still serving %s", list(self.variants))

    def close(self) -> None:
        """Stop following the endpoint state."""
        self._stopped.set()

    def pick(self, requested: str | None, key: object = None) -> Variant:
        with self._lock:
            return super().pick(requested, key)


def require_deployed(state: EndpointState) -> None:
    """Raise NothingDeployed when the endpoint state lists no version."""
    if not state.variants:
        raise NothingDeployed(f"no version of {state.model_name} is deployed: run `mlops deploy` first")


def live_app(ctx: PipelineContext, capture: float) -> FastAPI:
    """The local endpoint's app: the deployed variants, `capture` of the traffic kept in the lake."""
    router = LiveRouter(ctx)
    sink = LakeCapture(ctx.platform.lake, router.model_name, sampling=capture) if capture > 0 else None
    return create_app(router, sink)


def worker_app() -> FastAPI:
    """`live_app` in a worker process, from the settings `mlops serve` put in its environment."""
    return live_app(open_environment(os.environ[SERVE_ENVIRONMENT]), float(os.environ[SERVE_CAPTURE]))
