"""A/B experiments on the local endpoint: starting one puts the challenger on a sticky share of the
entities, every captured prediction records its arm, the readout waits for labels, stopping hands
all traffic back to the champion; bad commands fail with one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlops.cli import app
from pipelines.deployment.endpoint import EndpointState, ServingVariant, read_state, write_state
from pipelines.serving.app import INVOKED_VARIANT, create_app
from pipelines.serving.capture import LakeCapture
from pipelines.serving.live import LiveRouter
from pipelines.training import steps
from tests.registry_helpers import register_approved


@pytest.fixture
def two_versions(platform: Any, trained: tuple[Any, pd.DataFrame], tmp_path: Path) -> Any:
    register_approved(platform, trained[0], tmp_path / "bundle", ("r1", "r2"))
    write_state(platform.artifacts, EndpointState("churn-model", [ServingVariant("v1", 1, 1.0)]))
    return platform


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["experiment", *args])


def test_bad_experiment_commands_fail_with_one_line(two_versions: Any) -> None:
    for args, message in (
        (["--challenger", "9"], "--challenger 9: churn-model has no version 9"),
        (["--challenger", "2", "--share", "1.5"], "--share 1.5: must be between 0 and 1"),
        (["--challenger", "1"], "v1 is the live champion already"),
        (["--challenger", "2", "--metric", "ctr"], "--metric 'ctr': choose from auc, conversion"),
    ):
        answer = _run("start", *args)
        assert answer.exit_code == 1 and message in answer.output, answer.output
        assert answer.output.strip().count("\n") <= 1
    assert _run("start", "--challenger", "2").exit_code == 0
    again = _run("start", "--challenger", "2")
    assert again.exit_code == 1 and "already has a running experiment (v1 vs v2" in again.output
    assert _run("stop", "--keep-champion").exit_code == 0
    assert "has no running experiment" in _run("stop").output


def test_an_experiment_splits_entities_stickily_and_records_each_arm(
    two_versions: Any, trained: tuple[Any, pd.DataFrame]
) -> None:
    platform, (bundle, test) = two_versions, trained
    started = _run("start", "--challenger", "2", "--share", "0.3")
    assert started.exit_code == 0, started.output
    state = read_state(platform.artifacts, "churn-model")
    assert state.assignment == "sticky" and [(v.name, v.weight) for v in state.variants] == [
        ("v1", 0.7),
        ("v2", 0.3),
    ]

    ctx = steps.open_environment("local")
    router = LiveRouter(ctx, refresh_seconds=3600)
    capture = LakeCapture(platform.lake, "churn-model", flush_rows=100_000, flush_seconds=None)
    client = TestClient(create_app(router, capture))
    rows = test[["customer_id", "event_time", *bundle.feature_names]].drop_duplicates("customer_id").head(300)
    first: dict[str, str] = {}
    for _ in range(2):
        for record in json.loads(rows.to_json(orient="records", date_format="iso")):
            answer = client.post("/invocations", json=record)
            assert answer.status_code == 200 and answer.headers["X-Inference-Id"]
            arm = answer.headers[INVOKED_VARIANT]
            assert first.setdefault(record["customer_id"], arm) == arm  # the same entity, the same arm
    router.close()
    shares = pd.Series(first).value_counts(normalize=True)
    assert shares["v2"] == pytest.approx(0.3, abs=0.08)
    assert capture.flush() == 600
    captured = platform.lake.read("capture.churn_model").to_pandas()
    assert set(zip(captured["variant"], captured["model_version"], strict=True)) == {("v1", "1"), ("v2", "2")}
    assert captured["inference_id"].is_unique and captured["event_time"].min().year < 2026

    status = _run("status")  # no label has arrived: the readout waits
    assert status.exit_code == 0 and "continue" in status.output, status.output
    stopped = _run("stop")
    assert stopped.exit_code == 0 and "stopped: continue" in " ".join(stopped.output.split())
    after = read_state(platform.artifacts, "churn-model")
    assert [(v.version, v.weight) for v in after.variants] == [(1, 1.0)] and after.assignment == "random"


def test_stop_deploys_a_winning_challenger_through_the_guarded_deployment(
    two_versions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops.cli.errors as cli_errors
    import pipelines.experiments.steps as experiment_steps
    import pipelines.flows.deployment as deployment

    assert _run("start", "--challenger", "2").exit_code == 0
    real = experiment_steps.read_out
    monkeypatch.setattr(
        experiment_steps, "read_out", lambda *a, **k: replace(real(*a, **k), decision="promote", reason="won")
    )
    deployed: list[int | None] = []
    monkeypatch.setattr(cli_errors, "prepare_flows", lambda env: None)
    monkeypatch.setattr(
        deployment,
        "deployment_flow",
        lambda env, version: deployed.append(version) or {"decision": "promoted"},
    )
    stopped = _run("stop")
    assert stopped.exit_code == 0, stopped.output
    assert deployed == [2] and "guarded deployment of v2: promoted" in stopped.output
    record = json.loads(two_versions.artifacts.get_bytes("experiments/churn-model.json"))
    assert record["status"] == "stopped" and record["decision"] == "promote"


def test_a_deployment_under_a_running_experiment_is_refused_and_changes_nothing(two_versions: Any) -> None:
    from pipelines.deployment.steps import deploy_step

    assert _run("start", "--challenger", "2").exit_code == 0
    split = read_state(two_versions.artifacts, "churn-model")
    outcome = deploy_step(steps.open_environment("local"), 2)
    assert outcome.decision == "refused"
    assert outcome.reason == (
        "an experiment is running on churn-model (v1 vs v2): stop it first (mlops experiment stop)"
    )
    assert read_state(two_versions.artifacts, "churn-model") == split
    assert _run("stop", "--keep-champion").exit_code == 0
