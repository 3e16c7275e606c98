"""The whole loop on the local environment: train, deploy, drifted traffic, drift detected,
retrain, gate and redeploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.datagen.churn import ChurnDataConfig, Drift, generate_churn_events
from pipelines.deployment.endpoint import read_state
from pipelines.deployment.steps import handler_for
from pipelines.features.compute import compute_window_features
from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.capture import LakeCapture
from pipelines.training import steps

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_train_deploy_drift_retrain_redeploy(
    platform: Any, small_events: pd.DataFrame, usecase: Any, tmp_path: Path
) -> None:
    from pipelines.flows.deployment import deployment_flow
    from pipelines.flows.monitoring import monitoring_flow
    from pipelines.flows.training import training_flow

    first = tmp_path / "first.parquet"
    small_events.to_parquet(first, index=False)
    assert training_flow(env="local", source=str(first))["status"] == "Approved"
    assert deployment_flow(env="local")["decision"] == "promoted"
    assert read_state(platform.artifacts, "churn-model").live_version() == 1

    # The world moves: sessions get three times longer, and that data lands in the lake.
    drifted = generate_churn_events(
        usecase.dataset,
        ChurnDataConfig(
            rows=20_000, seed=12, drift=Drift("session_minutes", datetime(2025, 1, 1, tzinfo=UTC), 3.0)
        ),
    )
    later = tmp_path / "drifted.parquet"
    drifted.to_parquet(later, index=False)
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, later)

    # Production traffic carries the drifted features; the endpoint captures it.
    champion = platform.registry.get("churn-model", 1)
    features = compute_window_features(drifted, usecase).sample(1_000, random_state=0)
    capture = LakeCapture(platform.lake, "churn-model", sampling=1.0, flush_rows=10_000, flush_seconds=None)
    client = TestClient(create_app(VariantRouter([Variant("v1", handler_for(ctx, champion))]), capture))
    for start in range(0, 1_000, 100):
        body = features.iloc[start : start + 100].drop(columns=["feature_time"]).to_json(orient="records")
        assert (
            client.post(
                "/invocations", content=body, headers={"content-type": "application/json"}
            ).status_code
            == 200
        )
    assert capture.flush() == 1_000

    summary = monitoring_flow(env="local")
    drift = summary["drift"]
    assert drift["status"] == "alert" and "session_minutes_sum_7d" in drift["alerts"]
    assert Path(drift["report_uri"].removeprefix("file://")).read_text().count("data:image/png") >= 10
    assert "amount_sum_30d" not in drift["alerts"]
    # the drift is ranked by what it does to the model: the live version's importance weighs it
    assert drift["drift_that_matters"][0].startswith("session_minutes"), drift["drift_that_matters"]
    assert "Drift that matters" in Path(drift["report_uri"].removeprefix("file://")).read_text()

    retrained = summary["retraining"]
    assert retrained["version"] == 2 and retrained["run_key"] != champion.run_key
    gate = next(g for g in retrained["gates"] if g["name"] == "not_worse_than_champion")
    assert "champion v1" in gate["detail"]
    if retrained["status"] == "Approved":
        assert summary["deployment"]["decision"] == "promoted"
        assert read_state(platform.artifacts, "churn-model").live_version() == 2
    else:
        assert summary["deployment"] is None
        assert read_state(platform.artifacts, "churn-model").live_version() == 1
    published = [d.value for d in platform.metrics.query("drift_max_psi", {"model": "churn-model"})]
    assert published and published[-1] >= 0.25
    assert json.loads(json.dumps(summary, default=str))
