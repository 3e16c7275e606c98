"""Two CPU ranks (gloo, under torchrun) through the training pipeline, and a killed two-rank run
resumed with one rank: the checkpoint does not depend on the world size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.training import steps
from pipelines.training.launch import LaunchError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_two_ranks_train_through_the_flow_and_register_one_version(platform, batch: Path) -> None:
    from pipelines.flows.training import training_flow

    summary = training_flow(env="local", source=str(batch), processes=2)
    assert summary["status"] == "Approved" and summary["version"] == 1, summary["gates"]
    result = json.loads(platform.artifacts.get_bytes(f"runs/churn-model/{summary['run_key']}/result.json"))
    assert result["world_size"] == 2
    assert [v.version for v in platform.registry.versions("churn-model")] == [1]


def test_a_killed_two_rank_run_resumes_with_one_rank(
    platform, batch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, batch)
    build = steps.feature_step(ctx)
    two = steps.prepare_step(ctx, build, processes=2)
    monkeypatch.setenv("MLOPS_FAULT_POINT", "train.after-first-epoch")
    with pytest.raises(LaunchError, match=r"2 ranks.*checkpoint is kept"):
        steps.train_step(ctx, two)
    monkeypatch.delenv("MLOPS_FAULT_POINT")

    one = steps.prepare_step(ctx, build, processes=1)
    assert one.run_key == two.run_key  # the world size is not part of the run's identity
    result = steps.train_step(ctx, one)
    assert result["resumed_from_epoch"] == 1 and result["world_size"] == 1
    evaluation = steps.evaluate_step(ctx, one, result)
    version = steps.register_step(ctx, one, result, evaluation)
    assert version.version == 1 and len(platform.registry.versions("churn-model")) == 1
