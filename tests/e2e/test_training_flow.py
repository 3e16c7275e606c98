"""The training flow end to end on a small dataset in a temporary local environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.lake.ingest import BatchRejected, curated_table
from pipelines.ports import ApprovalStatus
from pipelines.training import steps

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_flow_ingests_trains_evaluates_and_registers_with_lineage(platform, batch: Path) -> None:
    from prefect.client.orchestration import get_client

    from pipelines.flows.training import training_flow

    summary = training_flow(env="local", source=str(batch))

    assert summary["status"] == ApprovalStatus.APPROVED.value and summary["version"] == 1
    assert summary["metrics"]["auc"] > 0.7
    for key in ("evaluation_report", "training_curves", "validation_report"):
        assert _path(summary[key]).stat().st_size > 1000, key
    assert _path(summary["training_curves"]).read_bytes()[:4] == b"\x89PNG"
    report = _path(summary["evaluation_report"]).read_text()
    assert "Feature importance" in report and "Most important features per slice" in report
    importance = json.loads((_path(summary["evaluation_report"]).parent / "importance.json").read_text())
    overall = importance["groups"]["overall"]
    assert importance["metric"] == "auc" and len(overall) == len(
        steps.open_environment("local").usecase.feature_names()
    )
    assert overall[0]["low"] > 0 and any(name.startswith("plan=") for name in importance["groups"])

    version = platform.registry.get("churn-model", 1)
    curated = platform.lake.current_snapshot(curated_table(steps.open_environment("local").usecase.dataset))
    assert version.lineage["tables"]["curated.churn_events"] == curated.snapshot_id
    assert (
        version.lineage["tables"]["features.customer_activity"]
        == platform.lake.current_snapshot("features.customer_activity").snapshot_id
    )
    for table, snapshot_id in version.lineage["tables"].items():  # kept readable past retention
        refs = platform.lake.catalog.load_table(platform.lake.identifier(table)).metadata.refs
        assert refs["model/churn-model/v1"].snapshot_id == snapshot_id
    assert version.lineage["git_commit"] and version.parameters["max_epochs"] == 12
    assert version.metrics["auc"] == pytest.approx(summary["metrics"]["auc"])
    assert platform.registry.champion("churn-model").version == 1

    mlflow.set_tracking_uri(platform.contract.tracking.tracking_uri)
    run = mlflow.get_run(version.lineage["tracking_run_id"])
    assert run.data.params["run_key"] == summary["run_key"]
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_auc")
    assert len(history) == summary["epochs"]
    assert run.data.metrics["system/process_peak_rss_megabytes"] > 50

    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"training-summary", "evaluation-gates"} <= keys


def test_rejected_batch_fails_the_flow_and_changes_nothing(
    platform, batch: Path, usecase, tmp_path: Path
) -> None:
    from pipelines.flows.training import training_flow

    training_flow(env="local", source=str(batch))
    curated_before = platform.lake.current_snapshot(curated_table(usecase.dataset))
    versions_before = platform.registry.versions()

    bad = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=3_000, seed=8, faults=("null_keys",)))
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    with pytest.raises(BatchRejected, match="customer_id: expect_column_values_to_not_be_null"):
        training_flow(env="local", source=str(bad_path))

    assert platform.lake.current_snapshot(curated_table(usecase.dataset)) == curated_before
    assert platform.registry.versions() == versions_before
    assert platform.registry.champion("churn-model") == versions_before[0]


def test_killed_training_resumes_and_registers_one_version(
    platform, usecase, local_root: Path, tmp_path: Path
) -> None:
    from pipelines.flows.training import training_flow

    # Big enough that every epoch takes a noticeable time, so the kill lands mid-run even on a slow machine.
    batch = tmp_path / "larger.parquet"
    generate_churn_events(usecase.dataset, ChurnDataConfig(rows=120_000, seed=13)).to_parquet(
        batch, index=False
    )
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, batch)
    prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
    checkpoint = (
        local_root / "artifacts" / "runs" / "churn-model" / prepared.run_key / "checkpoints" / "last.pt"
    )

    job = subprocess.Popen(
        [sys.executable, "-m", "pipelines.training.job", prepared.spec_uri], env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait(timeout=30)
    assert checkpoint.exists(), "the job never wrote a checkpoint"
    assert not checkpoint.with_name("result.json").exists()
    assert not (checkpoint.parent.parent / "result.json").exists(), (
        "the job finished before it could be killed"
    )

    summary = training_flow(env="local")
    assert summary["run_key"] == prepared.run_key
    assert summary["resumed_from_epoch"] >= 1
    assert [v.run_key for v in platform.registry.versions()] == [prepared.run_key]

    again = training_flow(env="local")
    assert again["version"] == summary["version"]
    assert len(platform.registry.versions()) == 1


def test_new_data_trains_a_challenger_gated_against_the_champion(
    platform, batch: Path, usecase, tmp_path: Path
) -> None:
    from pipelines.flows.training import training_flow

    first = training_flow(env="local", source=str(batch))
    more = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=6_000, seed=12))
    more_path = tmp_path / "more.parquet"
    more.to_parquet(more_path, index=False)
    second = training_flow(env="local", source=str(more_path))

    assert second["run_key"] != first["run_key"] and second["version"] == 2
    gate = next(g for g in second["gates"] if g["name"] == "not_worse_than_champion")
    assert "champion v1" in gate["detail"]
    expected = (
        ApprovalStatus.APPROVED.value
        if all(g["passed"] for g in second["gates"])
        else ApprovalStatus.REJECTED.value
    )
    assert second["status"] == expected
    champion = platform.registry.champion("churn-model")
    assert champion.version == (2 if expected == ApprovalStatus.APPROVED.value else 1)
