"""The whole loop on the local environment: train, deploy, drifted traffic whose labels show the
model failing on one slice; live quality flags the slice, drift is detected, retrain, gate and
redeploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
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
    platform: Any, small_events: pd.DataFrame, usecase: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.flows.monitoring as monitoring_module
    from pipelines.flows.deployment import deployment_flow
    from pipelines.flows.monitoring import monitoring_flow
    from pipelines.flows.quality import quality_flow
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
    # ... and the model stops working for standard-plan customers: half their labels say the opposite.
    flip = (drifted["plan"] == "standard") & (np.random.default_rng(3).random(len(drifted)) < 0.5)
    drifted.loc[flip, "churned_30d"] = 1 - drifted.loc[flip, "churned_30d"]
    later = tmp_path / "drifted.parquet"
    drifted.to_parquet(later, index=False)
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, later)

    # Production traffic carries the drifted features; the endpoint captures it.
    champion = platform.registry.get("churn-model", 1)
    features = compute_window_features(drifted, usecase).sample(1_000, random_state=0)
    capture = LakeCapture(platform.lake, "churn-model", sampling=1.0, flush_rows=10_000, flush_seconds=None)
    client = TestClient(
        create_app(VariantRouter([Variant("v1", handler_for(ctx, champion), version="1")]), capture)
    )
    for start in range(0, 1_000, 100):
        # each request says which event it scores (its event time), as a scoring service would
        rows = features.iloc[start : start + 100].rename(columns={"feature_time": "event_time"})
        body = rows.to_json(orient="records", date_format="iso")
        assert (
            client.post(
                "/invocations", content=body, headers={"content-type": "application/json"}
            ).status_code
            == 200
        )
    assert capture.flush() == 1_000

    # The labels of those events are in the lake: live quality finds the slice the model fails on.
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(monitoring_module, "emit_event", lambda **event: emitted.append(event))
    quality = quality_flow(env="local", retrain=False)["quality"]
    assert quality["labels"]["labelled"] == 1_000 and quality["labels"]["unlabelled"] == 0, quality["labels"]
    assert quality["status"] == "degraded"
    fallen = {d["group"]: d for d in quality["degraded"]}
    assert "plan=standard" in fallen and fallen["plan=standard"]["live"] < 0.7
    assert not {"plan=premium", "plan=basic"} & set(fallen)
    assert "plan=standard" in Path(quality["report_uri"].removeprefix("file://")).read_text()
    (event,) = emitted  # the retraining trigger deployed training flows subscribe to
    assert event["event"] == "mlops.drift.alert" and event["payload"]["reason"] == "quality"
    published = platform.metrics.query("live_auc", {"model": "churn-model", "version": "1"})
    by_group = {d.dimensions.get("slice", "overall"): d.value for d in published}
    assert by_group["overall"] == pytest.approx(quality["live"]["1"])
    assert by_group["plan=standard"] == pytest.approx(fallen["plan=standard"]["live"])

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
