"""The sweep engine trains each trial exactly as a standalone run of today's loop would."""

from __future__ import annotations

from typing import Any

import torch

from models.network import TabularNet
from models.sweep import TrialSettings, run_trials
from models.train import TensorSplit, fit, seed_everything


class _NoCheckpoint:
    def save(self, payload: bytes) -> None:
        pass

    def load(self) -> bytes | None:
        return None


def _split(rows: int, seed: int) -> TensorSplit:
    generator = torch.Generator().manual_seed(seed)
    numeric = torch.randn(rows, 4, generator=generator)
    categorical = torch.randint(0, 3, (rows, 1), generator=generator)
    logits = numeric[:, 0] - 0.5 * numeric[:, 1] + (categorical[:, 0] == 2).float()
    labels = (torch.rand(rows, generator=generator) < torch.sigmoid(logits)).float()
    return TensorSplit(numeric, categorical, labels)


def _network(parameters: dict[str, Any]) -> TabularNet:
    width, depth = int(parameters["hidden_width"]), int(parameters["depth"])
    return TabularNet(4, [3], 2, (width,) * depth, 0.1)


def test_each_trial_equals_a_standalone_run_with_its_settings() -> None:
    train, valid = _split(600, 1), _split(200, 2)
    base = TrialSettings(
        max_epochs=6, batch_size=64, learning_rate=1e-2, weight_decay=0.0, patience=2, seed=3
    )
    trials = [
        (0, {"hidden_width": 16, "depth": 1, "learning_rate": 0.02, "epochs": 5}),
        (1, {"hidden_width": 32, "depth": 2, "weight_decay": 1e-3, "batch_size": 32}),
        (2, {"hidden_width": 8, "depth": 1, "learning_rate": 0.001, "epochs": 3}),
    ]
    swept = run_trials(_network, train, valid, trials, base, torch.device("cpu"), "binary")

    assert [o.trial for o in swept] == [0, 1, 2]
    for (_, parameters), outcome in zip(trials, swept, strict=True):
        settings = base.with_parameters(parameters)
        seed_everything(settings.seed)
        alone = _network(parameters)
        state, _ = fit(alone, train, valid, settings, torch.device("cpu"), _NoCheckpoint(), task="binary")
        assert abs(outcome.score - state.best_score) < 1e-5
        assert (outcome.best_epoch, outcome.epochs) == (state.best_epoch, state.epochs_done)
    assert swept[0].epochs <= 5 and swept[2].epochs <= 3  # each trial's own epochs
    assert len({round(o.score, 6) for o in swept}) == 3  # the settings made a difference
