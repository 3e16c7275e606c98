"""The sweep end to end on the local environment: a killed sweep resumes from its finished chunks,
records one results snapshot, tests each segment's winner against the global model and reports."""

from __future__ import annotations

from pathlib import Path

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

    # Run again, everything is done: no chunk trains, nothing is recorded twice.
    assert sweep.run_chunks(ctx, plan, plan_uri) == 0
    again = sweep.record(ctx, plan, sweep.gather(ctx, plan), dict(prepared.lineage["tables"]))
    assert f"{table}@{again.snapshot_id}" == summary["results_table"]
    assert len(ctx.platform.lake.snapshots(table)) == 1
