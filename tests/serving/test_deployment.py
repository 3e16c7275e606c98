"""Guarded deployment on the local endpoint: smoke test, canary, promote or roll back."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from pipelines.deployment.endpoint import read_state
from pipelines.deployment.guarded import CanaryPolicy, guarded_deploy
from pipelines.ports import ApprovalStatus
from pipelines.serving.handler import InferenceHandler
from tests.registry_helpers import register_approved


class FailingHandler(InferenceHandler):
    """A challenger that answers every request with an error."""

    def predict(self, body: bytes, content_type: str) -> tuple[pd.DataFrame, list[float]]:
        raise RuntimeError("model server crashed")


@pytest.fixture
def setup(platform: Any, trained: tuple[Any, pd.DataFrame], usecase: Any, tmp_path: Any) -> dict[str, Any]:
    bundle, test = trained
    versions = register_approved(platform, bundle, tmp_path / "bundle", ("r1", "r2"))
    features = ["customer_id", *bundle.feature_names]
    smoke_rows = test[features].head(5)
    return {
        "versions": versions,
        "traffic": test[features],
        "smoke": (smoke_rows, bundle.predict_proba(smoke_rows).tolist()),
        "good": lambda v: InferenceHandler(bundle, usecase),
        "bundle": bundle,
    }


def _deploy(platform: Any, setup: dict[str, Any], version: int, handler_for: Any, smoke: Any = None) -> Any:
    return guarded_deploy(
        setup["versions"][version - 1],
        handler_for,
        platform.registry,
        platform.artifacts,
        setup["traffic"],
        smoke or setup["smoke"],
        CanaryPolicy(canary_share=0.3, bake_requests=100, max_p99_ms=5_000),
    )


def test_first_deployment_goes_live_after_the_smoke_test(platform: Any, setup: dict[str, Any]) -> None:
    outcome = _deploy(platform, setup, 1, setup["good"])
    assert outcome.decision == "promoted"
    assert read_state(platform.artifacts, "churn-model").live_version() == 1
    assert _deploy(platform, setup, 1, setup["good"]).decision == "already_live"


def test_healthy_challenger_is_promoted_after_baking(platform: Any, setup: dict[str, Any]) -> None:
    _deploy(platform, setup, 1, setup["good"])
    outcome = _deploy(platform, setup, 2, setup["good"])
    assert outcome.decision == "promoted"
    assert outcome.stats["v2"]["requests"] > 10 and outcome.stats["v2"]["error_rate"] == 0.0
    state = read_state(platform.artifacts, "churn-model")
    assert [(v.version, v.weight) for v in state.variants] == [(2, 1.0)]


def test_failing_challenger_is_rolled_back_and_the_champion_keeps_all_traffic(
    platform: Any, setup: dict[str, Any], usecase: Any
) -> None:
    _deploy(platform, setup, 1, setup["good"])

    def handlers(version: Any) -> InferenceHandler:
        cls = FailingHandler if version.version == 2 else InferenceHandler
        return cls(setup["bundle"], usecase)

    # the smoke test passes (it scores frames directly); live requests to the challenger fail
    outcome = _deploy(platform, setup, 2, handlers)
    assert outcome.decision == "rolled_back" and "error rate" in outcome.reason
    assert outcome.stats["v2"]["error_rate"] == 1.0 and outcome.stats["v1"]["error_rate"] == 0.0
    state = read_state(platform.artifacts, "churn-model")
    assert [(v.version, v.weight) for v in state.variants] == [(1, 1.0)]
    rejected = platform.registry.get("churn-model", 2)
    assert rejected.status == ApprovalStatus.REJECTED and rejected.status_reason.startswith("rolled back")
    assert platform.registry.champion("churn-model").version == 1


def test_wrong_known_answer_stops_the_deployment_before_any_traffic(
    platform: Any, setup: dict[str, Any]
) -> None:
    rows, expected = setup["smoke"]
    outcome = _deploy(platform, setup, 1, setup["good"], smoke=(rows, [x + 0.1 for x in expected]))
    assert outcome.decision == "smoke_test_failed"
    assert read_state(platform.artifacts, "churn-model").live_version() is None
