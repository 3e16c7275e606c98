"""The guarded deployment policy, enforced by the flow on the local endpoint (SageMaker enforces the
same policy itself with a blue/green update and alarm-based auto-rollback).

1. Smoke test: a known request must get its known answer from the candidate (scores recorded at
   evaluation), before any traffic moves.
2. Canary: the candidate takes `canary_share` of the traffic for the baking period (`bake_requests`
   requests, replayed from recent inputs), while errors and latency are watched per variant.
3. Promote (candidate 100%) or roll back (champion keeps 100%, candidate rejected with the reason).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.deployment.endpoint import EndpointState, ServingVariant, read_state, write_state
from pipelines.faults import fault_point
from pipelines.ports import ApprovalStatus, ArtifactStore, ModelVersion, RegistryPort
from pipelines.serving.app import Variant, VariantRouter
from pipelines.serving.handler import InferenceHandler


@dataclass(frozen=True)
class CanaryPolicy:
    canary_share: float = 0.1
    bake_requests: int = 200
    rows_per_request: int = 1
    max_error_rate: float = 0.01
    max_p99_ms: float = 250.0
    smoke_tolerance: float = 1e-5
    seed: int = 0


@dataclass
class DeploymentOutcome:
    model_name: str
    version: int
    decision: str  # promoted | rolled_back | smoke_test_failed | already_live | refused
    reason: str = ""
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


class SmokeTestFailed(Exception):
    pass


def smoke_test(
    handler: InferenceHandler, smoke: pd.DataFrame, expected: list[float], tolerance: float
) -> None:
    """The candidate must give the known answer to the known request."""
    got = handler.predict_frame(smoke)
    if len(got) != len(expected) or not np.allclose(got, expected, atol=tolerance):
        raise SmokeTestFailed(f"smoke test: expected {expected[:3]}..., got {list(np.round(got[:3], 6))}...")


def _bake(router: VariantRouter, traffic: pd.DataFrame, policy: CanaryPolicy) -> dict[str, dict[str, float]]:
    """Replay `bake_requests` requests through the router; errors and latency per variant."""
    rng = np.random.default_rng(policy.seed)
    samples: dict[str, list[tuple[bool, float]]] = {name: [] for name in router.variants}
    for _ in range(policy.bake_requests):
        rows = traffic.iloc[rng.integers(0, len(traffic), policy.rows_per_request)]
        body = rows.to_json(orient="records").encode()
        variant = router.pick(None)
        started = time.perf_counter()
        try:
            variant.handler.predict(body, "application/json")
            ok = True
        except Exception:  # any failure of the variant counts against it, whatever its kind
            ok = False
        samples[variant.name].append((ok, (time.perf_counter() - started) * 1000))
    stats = {}
    for name, results in samples.items():
        if results:
            latencies = np.array([ms for _, ms in results])
            stats[name] = {
                "requests": float(len(results)),
                "error_rate": 1 - float(np.mean([ok for ok, _ in results])),
                "p99_ms": float(np.percentile(latencies, 99)),
            }
    return stats


def gate_on_smoke_test(
    candidate: ModelVersion,
    handler: InferenceHandler,
    registry: RegistryPort,
    smoke: tuple[pd.DataFrame, list[float]],
    policy: CanaryPolicy,
) -> DeploymentOutcome | None:
    """None when the candidate gives the known answers; else it is rejected and the outcome says why."""
    try:
        smoke_test(handler, smoke[0], smoke[1], policy.smoke_tolerance)
    except Exception as exc:  # a crash of the candidate fails the smoke test like a wrong answer
        registry.set_status(
            candidate.model_name,
            candidate.version,
            ApprovalStatus.REJECTED,
            f"deployment smoke test failed: {exc}",
        )
        return DeploymentOutcome(candidate.model_name, candidate.version, "smoke_test_failed", str(exc))
    return None


class LocalDeployer:
    """DeployerPort for the local endpoint: the policy enforced by the flow itself."""

    def deploy(
        self,
        candidate: ModelVersion,
        handler_for: Callable[[ModelVersion], InferenceHandler],
        registry: RegistryPort,
        store: ArtifactStore,
        traffic: pd.DataFrame,
        smoke: tuple[pd.DataFrame, list[float]],
        policy: CanaryPolicy | None = None,
    ) -> DeploymentOutcome:
        return guarded_deploy(
            candidate, handler_for, registry, store, traffic, smoke, policy or CanaryPolicy()
        )

    def route(self, state: EndpointState, registry: RegistryPort, store: ArtifactStore) -> str:
        """The local server watches the state file: writing it shifts the traffic."""
        write_state(store, state)
        split = ", ".join(f"{v.name} {v.weight:.0%}" for v in state.variants if v.weight > 0)
        return f"local endpoint serves {split}"


def guarded_deploy(
    candidate: ModelVersion,
    handler_for: Callable[[ModelVersion], InferenceHandler],
    registry: RegistryPort,
    store: ArtifactStore,
    traffic: pd.DataFrame,
    smoke: tuple[pd.DataFrame, list[float]],
    policy: CanaryPolicy = CanaryPolicy(),
) -> DeploymentOutcome:
    """Deploy `candidate` behind the live version, or first, with the policy above."""
    state = read_state(store, candidate.model_name)
    live = state.live_version()
    if live == candidate.version:
        return DeploymentOutcome(candidate.model_name, candidate.version, "already_live")
    candidate_handler = handler_for(candidate)
    failed = gate_on_smoke_test(candidate, candidate_handler, registry, smoke, policy)
    if failed is not None:
        return failed

    stats: dict[str, dict[str, float]] = {}
    if live is not None:
        champion = registry.get(candidate.model_name, live)
        router = VariantRouter(
            [
                Variant(f"v{champion.version}", handler_for(champion), 1 - policy.canary_share),
                Variant(f"v{candidate.version}", candidate_handler, policy.canary_share),
            ],
            seed=policy.seed,
        )
        stats = _bake(router, traffic, policy)
        canary = stats.get(
            f"v{candidate.version}", {"error_rate": 1.0, "p99_ms": float("inf"), "requests": 0.0}
        )
        breaches = []
        if canary["requests"] == 0:
            breaches.append("the canary received no traffic")
        if canary["error_rate"] > policy.max_error_rate:
            breaches.append(f"error rate {canary['error_rate']:.1%} > {policy.max_error_rate:.1%}")
        if canary["p99_ms"] > policy.max_p99_ms:
            breaches.append(f"p99 latency {canary['p99_ms']:.1f} ms > {policy.max_p99_ms:.0f} ms")
        if breaches:
            reason = "rolled back: " + "; ".join(breaches)
            registry.set_status(candidate.model_name, candidate.version, ApprovalStatus.REJECTED, reason)
            return DeploymentOutcome(candidate.model_name, candidate.version, "rolled_back", reason, stats)

    fault_point("deploy.before-live")
    write_state(  # the one commit that makes the candidate live (an atomic replace of the state file)
        store,
        EndpointState(
            candidate.model_name, [ServingVariant(f"v{candidate.version}", candidate.version, 1.0)]
        ),
    )
    return DeploymentOutcome(candidate.model_name, candidate.version, "promoted", json.dumps(stats), stats)
