"""Batch inference end to end on the local environment: the flow scores a curated snapshot into
predictions.<model> with the training set's point-in-time features, once per (model version, input
snapshot); a job killed half-way commits nothing and its rerun completes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.cli import app
from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.errors import BatchInferenceError
from pipelines.faults import FAULT_VARIABLE
from pipelines.inference import job as inference_job
from pipelines.inference import steps as inference
from pipelines.lake.ingest import curated_table
from pipelines.ports import ApprovalStatus
from pipelines.training import steps
from pipelines.training.bundles import load_bundle
from pipelines.training.dataset import build_spine
from tests.e2e.conftest import ingested_local_environment

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, small_events: pd.DataFrame
) -> Iterator[steps.PipelineContext]:
    """A local environment with one approved model trained on the small example events."""
    root = tmp_path_factory.mktemp("batch-inference")
    with pytest.MonkeyPatch.context() as patch:
        ctx = ingested_local_environment(root, small_events, patch)
        prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
        result = steps.train_step(ctx, prepared)
        version = steps.register_step(ctx, prepared, result, steps.evaluate_step(ctx, prepared, result))
        assert version.status == ApprovalStatus.APPROVED
        yield ctx


def _expected_scores(ctx: steps.PipelineContext, snapshot_id: int) -> pd.DataFrame:
    """What training's own path answers for every curated row: its as-of join and the torch model."""
    dataset = ctx.usecase.dataset
    curated = ctx.platform.lake.read(curated_table(dataset), snapshot_id=snapshot_id).to_pandas()
    rows = ctx.features.training_set(
        ctx.usecase.features, build_spine(curated, ctx.usecase), dataset.entity_key, dataset.event_time
    )
    champion = ctx.platform.registry.champion(ctx.model_name)
    assert champion is not None
    rows["expected"] = load_bundle(champion.artifact_uri).predict(rows)
    return rows[[*dataset.primary_key, "expected"]]


def test_a_job_killed_half_way_commits_nothing_and_its_rerun_completes(
    trained: steps.PipelineContext,
) -> None:
    ctx = trained
    spec = inference.plan(ctx).model_copy(update={"chunk_rows": 2_000})
    uri = inference.fanout_spec(ctx, spec)
    before = ctx.platform.lake.snapshots(spec.output_table)
    killed = subprocess.run(
        [sys.executable, "-m", "pipelines.fanout", uri, "0"],
        env={**os.environ, FAULT_VARIABLE: "batch-inference.after-first-chunk"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert ctx.platform.lake.snapshots(spec.output_table) == before  # a data file, but no commit

    result = inference.run(ctx, spec)
    assert result["written"] and result["rows"] == spec.input_rows
    again = inference.run(ctx, inference.plan(ctx))  # another run id, the same model and snapshot
    assert not again["written"] and again["snapshot_id"] == result["snapshot_id"]
    assert len(ctx.platform.lake.snapshots(spec.output_table)) == len(before) + 1


def test_the_flow_scores_a_snapshot_with_point_in_time_features_once(
    trained: steps.PipelineContext, prefect_harness: None, tmp_path: Path
) -> None:
    from pipelines.flows.batch_inference import batch_inference_flow

    ctx, dataset = trained, trained.usecase.dataset
    later = generate_churn_events(dataset, ChurnDataConfig(rows=3_000, seed=12))
    source = tmp_path / "later.parquet"
    later.to_parquet(source, index=False)
    steps.ingest_step(ctx, source)  # a new curated snapshot: features are brought up to it first
    curated = ctx.platform.lake.current_snapshot(curated_table(dataset))
    assert curated is not None

    result = batch_inference_flow(env="local")
    assert result["written"] and result["input_snapshot_id"] == curated.snapshot_id
    table = inference.predictions_table(ctx.model_name)
    (snapshot,) = [s for s in ctx.platform.lake.snapshots(table) if s.snapshot_id == result["snapshot_id"]]
    features = ctx.platform.lake.current_snapshot(ctx.features.offline_table(ctx.usecase.features))
    assert features is not None and features.properties["mlops.source-snapshot"] == str(curated.snapshot_id)
    assert snapshot.properties[inference_job.MODEL_VERSION] == "1"
    assert snapshot.properties[inference_job.INPUT_TABLE] == curated_table(dataset)
    assert snapshot.properties[inference_job.INPUT_SNAPSHOT] == str(curated.snapshot_id)
    assert snapshot.properties[inference_job.FEATURES_SNAPSHOT] == str(features.snapshot_id)

    predictions = ctx.platform.lake.read(table, snapshot_id=snapshot.snapshot_id).to_pandas()
    predictions = predictions[predictions["input_snapshot_id"] == curated.snapshot_id]
    assert set(predictions.columns) >= {
        dataset.entity_key,
        dataset.event_time,
        "score",
        "model_version",
        "input_snapshot_id",
        "features_snapshot_id",
        "run_id",
    }
    assert len(predictions) == len(
        ctx.platform.lake.read(curated_table(dataset), columns=[dataset.entity_key])
    )
    assert (predictions["run_id"] == result["run_id"]).all()
    joined = predictions.merge(_expected_scores(ctx, curated.snapshot_id), on=list(dataset.primary_key))
    assert len(joined) == len(predictions)
    assert np.abs(joined["score"] - joined["expected"]).max() < 1e-5  # ONNX file vs torch, same features

    rerun = batch_inference_flow(env="local")
    assert not rerun["written"] and rerun["snapshot_id"] == result["snapshot_id"]
    assert ctx.platform.lake.current_snapshot(table).snapshot_id == result["snapshot_id"]  # type: ignore[union-attr]


def test_what_cannot_be_scored_is_named_in_one_line(trained: steps.PipelineContext) -> None:
    with pytest.raises(BatchInferenceError, match=r"--snapshot 42: not a snapshot of curated.churn_events"):
        inference.plan(trained, snapshot=42)
    with pytest.raises(BatchInferenceError, match=r"--version 7: .*no version 7"):
        inference.plan(trained, version=7)
    with pytest.raises(BatchInferenceError, match="has no approved version"):
        inference.plan(trained, model="no-such-model")
    answer = CliRunner().invoke(app, ["predict", "--version", "latest"])
    words = " ".join(answer.output.replace("│", " ").split())
    assert answer.exit_code == 2 and "or 'champion', got 'latest'" in words
