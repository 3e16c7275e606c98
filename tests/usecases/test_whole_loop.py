"""Two use cases besides churn run the whole loop from their YAML alone: ingest, validate,
features, train, evaluate with slices, register, deploy behind the smoke test, serve, invoke by
keys and by full rows, and monitor. One is a regression on a daily panel, the other a binary
task on a yearly panel with an open, nullable category."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlops.paths import PACKAGE_ROOT
from pipelines.datagen.examples import generate_example
from pipelines.usecase import load_usecase

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CASES = {
    "store_demand": {"rows": 36_500, "metric": "r2"},
    "firm_distress": {"rows": 40_000, "metric": "auc"},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_whole_loop_runs_from_the_spec_alone(
    name: str, use_environment: Callable[..., Path], tmp_path: Path
) -> None:
    from pipelines.deployment.endpoint import read_state
    from pipelines.flows.deployment import deployment_flow
    from pipelines.flows.monitoring import monitoring_flow
    from pipelines.flows.training import training_flow
    from pipelines.serving.app import create_app
    from pipelines.serving.capture import LakeCapture
    from pipelines.serving.live import LiveRouter
    from pipelines.training import steps

    spec_path = PACKAGE_ROOT / "usecases" / f"{name}.yaml"
    use_environment(spec_path)
    usecase = load_usecase(spec_path)
    data = generate_example(usecase, CASES[name]["rows"], seed=5)
    batch = tmp_path / "batch.parquet"
    data.to_parquet(batch, index=False)

    summary = training_flow(env="local", source=str(batch))
    model = usecase.model_name
    assert summary["model_name"] == model
    assert summary["status"] == "Approved", summary["gates"]
    metric = CASES[name]["metric"]
    assert metric in summary["metrics"]
    slice_gates = [g for g in summary["gates"] if g["name"].startswith("min_slice_")]
    assert {g["name"].split("[")[1].rstrip("]") for g in slice_gates} == set(usecase.task.slices)
    report = Path(summary["evaluation_report"].removeprefix("file://")).read_text()
    assert "churn" not in report.lower()

    deployed = deployment_flow(env="local")
    assert deployed["decision"] == "promoted", deployed
    ctx = steps.open_environment("local")
    assert read_state(ctx.platform.artifacts, model).live_version() == 1

    capture = LakeCapture(ctx.platform.lake, model, sampling=1.0, flush_seconds=None)
    client = TestClient(create_app(LiveRouter(ctx), capture))
    key = usecase.dataset.entity_key
    keys = data[key].drop_duplicates().head(20).tolist()
    by_key = client.post("/invocations", json=[{key: k} for k in keys])
    assert by_key.status_code == 200, by_key.text
    answer = by_key.json()
    field = usecase.prediction_field
    assert len(answer["predictions"]) == 20 and field in answer["predictions"][0]
    assert answer["feature_sources"]["online_store"] == ctx.usecase.feature_names()

    test_rows = pd.read_parquet(
        ctx.platform.artifacts.uri(f"runs/{model}/{summary['run_key']}/data/test.parquet").removeprefix(
            "file://"
        )
    )
    full = test_rows[[key, *usecase.feature_names()]].head(200)
    by_rows = client.post(
        "/invocations", content=full.to_json(orient="records"), headers={"content-type": "application/json"}
    )
    assert by_rows.status_code == 200, by_rows.text
    assert by_rows.json()["feature_sources"]["online_store"] == []
    expected = ctx.platform.registry.get(model, 1)
    assert len(by_rows.json()["predictions"]) == 200
    assert capture.flush() == 220

    monitored = monitoring_flow(env="local")
    assert monitored["drift"]["model_name"] == model
    assert monitored["drift"]["current_rows"] == 220
    assert json.loads(json.dumps(monitored, default=str))
    assert expected.lineage["usecase_signature"] == usecase.signature()
