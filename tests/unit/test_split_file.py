"""A training split streamed from its file in batches gives the encoder, target and tensors that
reading the whole split as one frame gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.bundle import Target
from models.encoding import FeatureEncoder
from models.moments import RunningMoments
from pipelines.training import split_file
from pipelines.training.split_file import SplitFile, split_tensors

NUMERIC = ["amount", "visits", "empty"]
CATEGORICAL: dict[str, list[str] | None] = {"plan": ["basic", "pro"], "region": None}


def _split(path: Path, rows: int, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1.5, rows) * rng.choice([-1, 1], rows)
    amount[rng.random(rows) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 50, rows),
            "empty": np.full(rows, np.nan),
            "plan": rng.choice(np.array(["basic", "pro", "gold", None], dtype=object), rows),
            # an open category: frequent values, rare ones (unknown bucket) and gaps
            "region": rng.choice(np.array([f"r{i}" for i in range(40)] + [None], dtype=object), rows),
            "label": rng.normal(10, 3, rows),
            "ignored": rng.random(rows),
        }
    )
    rare = rng.random(rows) < 0.01
    frame.loc[rare, "region"] = [f"rare{i}" for i in range(int(rare.sum()))]
    frame.to_parquet(path, row_group_size=1_000)
    return path


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_streamed_split_equals_the_whole_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    path = _split(tmp_path / "train.parquet", 20_011)
    if task == "binary":
        frame = pd.read_parquet(path)
        frame["label"] = (frame["label"] > 10).astype("int64")
        frame.to_parquet(path, row_group_size=1_000)
    whole = pd.read_parquet(path)
    expected_encoder = FeatureEncoder.fit(whole, NUMERIC, CATEGORICAL)
    expected_target = Target.fit(task, whole["label"].to_numpy(dtype="float64"))
    expected = split_tensors(expected_encoder, whole, "label", expected_target)

    monkeypatch.setattr(split_file, "BATCH_ROWS", 3_000)  # 7 batches, the last one short
    split = SplitFile(path, NUMERIC, CATEGORICAL, "label")
    encoder, target = split.fit(task)
    assert encoder.categorical == expected_encoder.categorical and len(encoder.categorical["region"]) == 40
    assert np.allclose(encoder.means[:2], expected_encoder.means[:2], rtol=1e-12)
    assert np.allclose(encoder.stds[:2], expected_encoder.stds[:2], rtol=1e-12)
    assert np.isnan(encoder.means[2]) and encoder.stds[2] == 1.0  # an all-missing column, as before
    assert target.task == task and target.baseline == pytest.approx(expected_target.baseline, rel=1e-12)
    assert (target.mean, target.std) == pytest.approx((expected_target.mean, expected_target.std), rel=1e-12)

    tensors = split.tensors(expected_encoder, expected_target)
    assert len(tensors) == len(split) == 20_011
    assert torch.equal(tensors.numeric, expected.numeric)
    assert tensors.categorical.dtype == torch.int32  # half the room of the encoder's int64 indexes
    assert torch.equal(tensors.categorical.long(), expected.categorical)
    assert torch.equal(tensors.labels, expected.labels)


def test_a_given_encoder_is_kept_and_only_the_label_is_read(tmp_path: Path) -> None:
    split = SplitFile(_split(tmp_path / "train.parquet", 5_000), NUMERIC, CATEGORICAL, "label")
    champion = FeatureEncoder(NUMERIC, {"plan": ["pro"], "region": ["r1"]}, [0.0, 1.0, 0.0], [1.0, 2.0, 1.0])
    encoder, target = split.fit("regression", champion)
    assert encoder is champion
    assert target.mean == pytest.approx(float(pd.read_parquet(split.path)["label"].mean()), rel=1e-12)


def test_moments_merge_batches_like_one_pass() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(8, 2, 100_003)
    values[::17] = np.nan
    moments = RunningMoments()
    for chunk in np.array_split(values, 13):
        moments.add(chunk)
    assert moments.count == int((~np.isnan(values)).sum())
    assert moments.mean == pytest.approx(float(np.nanmean(values)), rel=1e-12)
    assert moments.std == pytest.approx(float(np.nanstd(values)), rel=1e-12)


def test_an_encoded_split_yields_its_tensors_block_by_block_on_every_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split_file, "BATCH_ROWS", 3_000)
    split = SplitFile(_split(tmp_path / "valid.parquet", 10_007), NUMERIC, CATEGORICAL, "label")
    encoder, target = split.fit("regression")
    held, encoded = split.tensors(encoder, target), split.encoded(encoder, target)
    assert len(encoded) == len(held) == 10_007
    for _ in range(2):  # every epoch reads the file again
        blocks = list(encoded.blocks(1_024))
        assert max(len(block) for block in blocks) == 1_024
        assert torch.equal(torch.cat([b.numeric for b in blocks]), held.numeric)
        assert torch.equal(torch.cat([b.categorical for b in blocks]).int(), held.categorical)
        assert torch.equal(torch.cat([b.labels for b in blocks]), held.labels)


def test_training_scores_an_encoded_validation_split_as_a_held_one(tmp_path: Path) -> None:
    from mlops.settings import TrainingSettings
    from models.network import TabularNet
    from models.train import fit

    train = SplitFile(_split(tmp_path / "train.parquet", 6_000, seed=1), NUMERIC, CATEGORICAL, "label")
    valid = SplitFile(_split(tmp_path / "valid.parquet", 2_000, seed=2), NUMERIC, CATEGORICAL, "label")
    encoder, target = train.fit("regression")
    tensors = train.tensors(encoder, target)
    settings = TrainingSettings(max_epochs=3, batch_size=256, learning_rate=0.01, patience=5, seed=3)
    histories = []
    for validation in (valid.tensors(encoder, target), valid.encoded(encoder, target)):
        torch.manual_seed(0)
        network = TabularNet(3, encoder.cardinalities(), embedding_dim=3, hidden_sizes=(16,), dropout=0.1)
        state, _ = fit(network, tensors, validation, settings, torch.device("cpu"), None, task="regression")
        histories.append([(h.val_loss, h.val_score) for h in state.history])
    held, streamed = histories
    assert len(held) == len(streamed) == 3
    for (held_loss, held_score), (loss, score) in zip(held, streamed, strict=True):
        assert loss == pytest.approx(held_loss, rel=1e-6) and score == pytest.approx(held_score, rel=1e-6)
