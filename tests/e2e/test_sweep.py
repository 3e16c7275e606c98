"""The sweep end to end on the local environment: a killed sweep resumes from its finished chunks,
records one results snapshot, tests each segment's winner against the global model and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.adapters.factory import file_uri_to_path
from pipelines.sweep import steps as sweep
from pipelines.sweep.job import sweep_chunk
from pipelines.training import steps
from tests.e2e.conftest import ingested_local_environment

pytestmark = [pytest.mark.slow]
TRIALS = 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_sweep_resumes_from_its_finished_chunks(
    tmp_path: Path, small_events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.flows.sweep import sweep_flow

    ctx = ingested_local_environment(tmp_path, small_events, monkeypatch)

    # The first run dies after two chunks: what the flow would have planned, two children run.
    prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
    plan, plan_uri = sweep.plan_sweep(
        ctx, prepared, sweep.sweep_spec(ctx, TRIALS), ctx.settings.pipeline.sweep.chunk_trials
    )
    assert len(plan.chunks) >= 3
    for index in (0, 1):
        sweep_chunk(index, {"plan_uri": plan_uri})
    finished = {i: file_uri_to_path(ctx.platform.artifacts.uri(plan.result_key(i))) for i in (0, 1)}
    stamps = {i: path.stat().st_mtime_ns for i, path in finished.items()}

    summary = sweep_flow(env="local", trials=TRIALS)

    assert summary["sweep_key"] == plan.sweep_key
    assert {i: path.stat().st_mtime_ns for i, path in finished.items()} == stamps  # not trained again
    assert summary["trials"] == len(plan.segments) * TRIALS and summary["chunks"] == len(plan.chunks)
    assert summary["segments_tested"] >= 1 and summary["mean_test_lift_over_global"] is not None
    report = file_uri_to_path(summary["report"]).read_text()
    assert "Winners per segment" in report and "Parameter importance" in report

    table = sweep.sweeps_table(plan.model_name)
    rows = ctx.platform.lake.read(table).to_pandas()
    assert len(rows) == summary["trials"]
    assert set(rows["segment"]) == {s.name for s in plan.segments}
    assert rows["curated_snapshot_id"].nunique() == 1 and rows["sweep_key"].eq(plan.sweep_key).all()
    assert {"param_learning_rate", "param_hidden_width", "score", "best_epoch"} <= set(rows.columns)

    _the_segmented_model_is_registered_deployed_and_served(ctx, plan, prepared, summary)
    _winners_come_from_the_weights_their_chunks_kept(ctx, plan, prepared)

    # Run again, everything is done: no chunk trains, nothing is recorded twice.
    assert sweep.run_chunks(ctx, plan, plan_uri) == 0
    again = sweep.record(ctx, plan, sweep.gather(ctx, plan), dict(prepared.lineage["tables"]))
    assert f"{table}@{again.snapshot_id}" == summary["results_table"]
    assert len(ctx.platform.lake.snapshots(table)) == 1


def _the_segmented_model_is_registered_deployed_and_served(
    ctx: Any, plan: Any, prepared: Any, summary: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    from models.segmented import SegmentedBundle
    from pipelines.deployment.steps import handler_for
    from pipelines.flows.deployment import deployment_flow
    from pipelines.onnx_model import OnnxScorer, load_for_scoring
    from pipelines.serving.app import Variant, VariantRouter, create_app
    from pipelines.sweep.segmented import segmented_run_key
    from pipelines.training.bundles import load_bundle

    (version,) = ctx.platform.registry.versions(plan.model_name)
    assert summary["registered"] == f"{plan.model_name} v{version.version} (segmented): Approved"
    assert version.run_key == segmented_run_key(prepared, plan)
    assert (
        version.lineage["sweep_key"] == plan.sweep_key
        and version.lineage["global_run_key"] == prepared.run_key
    )
    bundle = load_bundle(version.artifact_uri)
    assert isinstance(bundle, SegmentedBundle) and bundle.column == plan.segment_column
    # Segments whose winner does not beat the global model on validation rows stay on the fallback.
    assert 1 <= len(bundle.segments) <= len(plan.segments)
    assert version.lineage["segments"] == len(bundle.segments)
    # Model as data: the segmented model is one ONNX file too. Batch work scores with it; a server
    # routes with the bundle (the graph runs every member's nodes on each small request).
    _, batch_scorer = load_for_scoring(version.artifact_uri, batch=True)
    _, served_by = load_for_scoring(version.artifact_uri)
    assert isinstance(batch_scorer, OnnxScorer) and isinstance(served_by, SegmentedBundle)

    # The guarded deployment takes it unchanged (its smoke test replays the segmented answers).
    assert deployment_flow(env="local")["decision"] == "promoted"
    client = TestClient(create_app(VariantRouter([Variant("v1", handler_for(ctx, version), version="1")])))
    test = pd.read_parquet(file_uri_to_path(ctx.platform.artifacts.uri(prepared.test_key)))
    member = bundle.segments[0]
    mixed = pd.concat(
        [
            test[test[plan.segment_column] == member].head(3),
            test[~test[plan.segment_column].isin(bundle.segments)].head(2),
        ]
    )
    assert len(mixed) == 5
    body = mixed[["customer_id", *bundle.feature_names]].to_json(orient="records")
    answer = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    served = [row[ctx.usecase.prediction_field] for row in answer.json()["predictions"]]
    expected = [*bundle.members[member].predict(mixed.head(3)), *bundle.fallback.predict(mixed.tail(2))]
    assert served == pytest.approx(expected, abs=1e-6)


def _winners_come_from_the_weights_their_chunks_kept(ctx: Any, plan: Any, prepared: Any) -> None:
    """Picking a winner trains nothing again: its chunk kept its weights, the very ones a retrain
    (deterministic) would give."""
    from pipelines.sweep.job import train_winner, winner_bundle

    best = sweep.winners(sweep.gather(ctx, plan))
    row = best.iloc[0]
    segment = next(s for s in plan.segments if s.name == row["segment"])
    assert ctx.platform.artifacts.exists(plan.best_key(int(row["chunk"])))
    kept = winner_bundle(plan, ctx.platform.artifacts, segment, int(row["trial"]), int(row["chunk"]))
    again = train_winner(plan, ctx.platform.artifacts, segment, int(row["trial"]))
    # The chunk kept its segment's encoding too, so no split is read or encoder fitted again.
    assert kept.encoder == again.encoder and kept.target == again.target
    test = pd.read_parquet(file_uri_to_path(ctx.platform.artifacts.uri(prepared.test_key)))
    rows = test[test[plan.segment_column] == row["segment"]]
    assert len(rows) > 0
    assert kept.predict(rows) == pytest.approx(again.predict(rows), abs=1e-6)
