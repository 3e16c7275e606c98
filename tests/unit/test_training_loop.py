"""The training loop: deterministic on CPU, early stopping, and resume == uninterrupted."""

from __future__ import annotations

import contextlib

import torch

from mlops.settings import TrainingSettings
from models.network import TabularNet
from models.train import EpochStats, TensorSplit, fit


class MemoryCheckpointer:
    def __init__(self) -> None:
        self.saved: list[bytes] = []

    def save(self, payload: bytes) -> None:
        self.saved.append(payload)

    def load(self) -> bytes | None:
        return self.saved[-1] if self.saved else None


class Interrupt(Exception):
    pass


def _data(seed: int = 0, rows: int = 3_000) -> tuple[TensorSplit, TensorSplit]:
    g = torch.Generator().manual_seed(seed)
    numeric = torch.randn(rows, 4, generator=g)
    categorical = torch.randint(0, 5, (rows, 1), generator=g)
    logits = 1.5 * numeric[:, 0] - numeric[:, 1] + (categorical[:, 0] == 2).float()
    labels = (torch.rand(rows, generator=g) < torch.sigmoid(logits)).float()
    cut = rows * 4 // 5
    return (
        TensorSplit(numeric[:cut], categorical[:cut], labels[:cut]),
        TensorSplit(numeric[cut:], categorical[cut:], labels[cut:]),
    )


def _net() -> TabularNet:
    torch.manual_seed(0)
    return TabularNet(4, [5], embedding_dim=3, hidden_sizes=(16,), dropout=0.1)


SETTINGS = TrainingSettings(max_epochs=6, batch_size=256, learning_rate=0.01, patience=10, seed=3)


def _weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.state_dict().values()]


def test_training_learns_and_is_deterministic() -> None:
    train, valid = _data()
    a, b = _net(), _net()
    state_a, _ = fit(a, train, valid, SETTINGS, torch.device("cpu"), MemoryCheckpointer())
    state_b, _ = fit(b, train, valid, SETTINGS, torch.device("cpu"), MemoryCheckpointer())
    assert state_a.best_score > 0.75
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))
    assert [h.val_score for h in state_a.history] == [h.val_score for h in state_b.history]


def test_32_bit_category_indexes_train_exactly_as_64_bit_ones() -> None:
    """The training job holds its category indexes as int32 (half the room); nothing may change."""
    train, valid = _data()
    narrow = [
        TensorSplit(split.numeric, split.categorical.to(torch.int32), split.labels)
        for split in (train, valid)
    ]
    wide, small = _net(), _net()
    state_wide, _ = fit(wide, train, valid, SETTINGS, torch.device("cpu"), None)
    state_small, _ = fit(small, *narrow, SETTINGS, torch.device("cpu"), None)
    assert all(torch.equal(x, y) for x, y in zip(_weights(wide), _weights(small), strict=True))
    assert [h.val_score for h in state_wide.history] == [h.val_score for h in state_small.history]


def test_resumed_training_ends_exactly_where_an_uninterrupted_one_does() -> None:
    train, valid = _data()
    reference = _net()
    fit(reference, train, valid, SETTINGS, torch.device("cpu"), MemoryCheckpointer())

    checkpoints = MemoryCheckpointer()

    def stop_after_two(stats: EpochStats) -> None:
        if stats.epoch == 2:
            raise Interrupt

    interrupted = _net()
    with contextlib.suppress(Interrupt):
        fit(
            interrupted,
            train,
            valid,
            SETTINGS,
            torch.device("cpu"),
            checkpoints,
            on_epoch=stop_after_two,
            extra={"run": "x"},
        )
    assert len(checkpoints.saved) == 2

    resumed = _net()
    epochs_seen: list[int] = []
    state, extra = fit(
        resumed,
        train,
        valid,
        SETTINGS,
        torch.device("cpu"),
        checkpoints,
        on_epoch=lambda s: epochs_seen.append(s.epoch),
    )
    assert state.resumed_from == 2
    assert epochs_seen == [3, 4, 5, 6]
    assert extra == {"run": "x"}
    assert all(torch.equal(x, y) for x, y in zip(_weights(reference), _weights(resumed), strict=True))


def test_early_stopping_restores_the_best_epoch() -> None:
    train, valid = _data()
    settings = SETTINGS.model_copy(update={"max_epochs": 40, "patience": 2, "learning_rate": 0.05})
    net = _net()
    state, _ = fit(net, train, valid, settings, torch.device("cpu"), MemoryCheckpointer())
    assert state.stopped_early and state.epochs_done < 40
    assert state.epochs_done == state.best_epoch + 2
    assert state.best_score == max(h.val_score for h in state.history)
