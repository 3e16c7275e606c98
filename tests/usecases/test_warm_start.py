"""Warm starts: with `training.warm_start`, a run on a new dataset version continues from the
champion's weights and encoding when they fit the run's inputs, and trains from scratch otherwise."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.paths import PACKAGE_ROOT
from models.encoding import FeatureEncoder
from pipelines.ports import ApprovalStatus, ModelCandidate
from pipelines.training import steps
from pipelines.training.bundles import load_bundle
from pipelines.training.warm_start import compatibility_problem


def _training(**overrides: object) -> dict[str, object]:
    settings = yaml.safe_load((PACKAGE_ROOT / "environments" / "local.yaml").read_text())
    return {**settings["pipeline"]["training"], "max_epochs": 1, "batch_size": 512, **overrides}


def test_a_new_dataset_version_continues_from_the_champion(
    use_environment: Callable[..., Path], small_events: pd.DataFrame, tmp_path: Path
) -> None:
    use_environment(PACKAGE_ROOT / "usecases" / "churn.yaml", training=_training(warm_start=True))
    ctx = steps.open_environment("local")
    times = small_events[ctx.usecase.dataset.event_time]
    older, newer = small_events[times < times.quantile(0.7)], small_events[times >= times.quantile(0.7)]
    older.to_parquet(tmp_path / "older.parquet", index=False)
    newer.to_parquet(tmp_path / "newer.parquet", index=False)

    steps.ingest_step(ctx, tmp_path / "older.parquet")
    first = steps.prepare_step(ctx, steps.feature_step(ctx))
    assert first.lineage["warm_start_from"] is None  # nothing to continue from yet
    model_uri = steps.train_step(ctx, first)["model_uri"]
    champion = ctx.platform.registry.register(
        ModelCandidate(ctx.model_name, first.run_key, model_uri, {}, {}, {})
    )
    champion = ctx.platform.registry.set_status(ctx.model_name, champion.version, ApprovalStatus.APPROVED)

    steps.ingest_step(ctx, tmp_path / "newer.parquet")
    second = steps.prepare_step(ctx, steps.feature_step(ctx))
    assert second.lineage["warm_start_from"] == champion.artifact_uri
    spec = json.loads(Path(second.spec_uri.removeprefix("file://")).read_text())
    assert spec["warm_start_uri"] == champion.artifact_uri
    continued = load_bundle(steps.train_step(ctx, second)["model_uri"])

    before = load_bundle(champion.artifact_uri)
    assert continued.encoder == before.encoder  # the champion's scaling and vocabularies, kept
    train_key = f"runs/{ctx.model_name}/{second.run_key}/data/train.parquet"
    train = pd.read_parquet(io.BytesIO(ctx.platform.artifacts.get_bytes(train_key)))
    refit = FeatureEncoder.fit(train, ctx.usecase.numeric_features(), ctx.usecase.categorical_vocabularies())
    assert not np.allclose(refit.means, before.encoder.means)  # a cold start would have scaled differently
    moved = [
        not np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(continued.network.parameters(), before.network.parameters(), strict=True)
    ]
    assert any(moved)  # and it did train on the new data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"numeric": ["other"]}, "its numeric features differ"),
        ({"categorical": {"plan": []}}, "its categorical features differ"),
        ({"task": "regression"}, "its task differs"),
        (
            {"architecture": {"embedding_dim": 8, "hidden_sizes": [128], "dropout": 0.1}},
            "its architecture differs",
        ),
    ],
)
def test_an_incompatible_champion_is_not_continued_from(change: dict[str, object], problem: str) -> None:
    architecture = {"embedding_dim": 8, "hidden_sizes": [64, 32], "dropout": 0.1}
    meta = {
        "encoder": {"numeric": ["a", "b"], "categorical": {"country": ["GB"]}},
        "target": {"task": "binary"},
        "architecture": architecture,
    }
    assert compatibility_problem(meta, ["a", "b"], ["country"], "binary", architecture) is None
    encoder = {**meta["encoder"], **{k: v for k, v in change.items() if k in ("numeric", "categorical")}}  # type: ignore[dict-item]
    changed = {
        "encoder": encoder,
        "target": {"task": change.get("task", "binary")},
        "architecture": change.get("architecture", architecture),
    }
    assert compatibility_problem(changed, ["a", "b"], ["country"], "binary", architecture) == problem
