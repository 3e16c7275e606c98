"""`models.train.fit` for a stack of trials: one batched training loop, each trial its own run.

The trials of a stack share their seed, batch size and network shape, so they share what the
standalone loop derives from those: the batch order of every epoch (a generator seeded with the
seed and the epoch) and the dropout masks (the loop reseeds the global generator before its first
step, and dropout is its only consumer). Learning rate, weight decay, epochs and patience are each trial's own. Every
epoch validates each trial, keeps its best weights and applies its early stopping; a trial that
stops leaves the stack, and the others go on without it.

Exactness: on CPU a full batch's step is the standalone loop's bit for bit in the shapes tested, and
a batch's last few rows agree to float32 rounding (`tests/model/test_stacked.py` holds each trial's
metrics and weights within 1e-5 of its standalone run; a batched product could sum in another order
on other kernels).
On CUDA the standalone loop uses mixed precision and CUDA's generator; the stack runs float32 with
masks drawn on the CPU, so there the results are deterministic but not the standalone's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.network import TabularNet
from models.stacked import StackedAdamW, StackedNetworks, dropout_masks
from models.train import EpochStats, LoopSettings, TensorSplit, TrainingState, answers, validation_metrics


@dataclass
class _Trial:
    network: TabularNet
    settings: LoopSettings
    state: TrainingState
    best: dict[str, torch.Tensor] | None = None

    @property
    def done(self) -> bool:
        return self.state.stopped_early or self.state.epochs_done >= self.settings.max_epochs


def _validate(
    stack: StackedNetworks, split: TensorSplit, device: torch.device, batch_size: int, task: str
) -> list[tuple[float, float]]:
    """Each trial's validation loss and score, as `models.train._evaluate` computes them."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(split), batch_size * 4):
            stop = start + batch_size * 4
            rows = min(stop, len(split)) - start
            raw = stack(
                split.numeric[start:stop].to(device),
                split.categorical[start:stop].to(device),
                batched=rows == batch_size * 4,
            )
            outputs.append(answers(raw, task))
    predictions = np.concatenate(outputs, axis=1) if outputs else np.zeros((stack.trials, 0))
    labels = split.labels.numpy()
    return [validation_metrics(task, labels, row) for row in predictions]


def fit_stack(
    networks: Sequence[TabularNet],
    settings: Sequence[LoopSettings],
    train: TensorSplit,
    valid: TensorSplit,
    device: torch.device,
    task: str = "binary",
) -> list[TrainingState]:
    """Train every network in place (left with its best weights), side by side. The networks must
    share one shape and the settings one seed and batch size (the caller groups them)."""
    seed, batch_size = settings[0].seed, settings[0].batch_size
    if any(s.seed != seed or s.batch_size != batch_size for s in settings):
        raise ValueError("trials in a stack must share their seed and batch size")
    trials = [_Trial(n, s, TrainingState()) for n, s in zip(networks, settings, strict=True)]
    active = [t for t in trials if not t.done]
    if not active:  # no epochs to train: the networks stay as built, as `fit` leaves them
        return [t.state for t in trials]
    stack = StackedNetworks([t.network for t in active], device)
    optimiser = StackedAdamW(
        stack.flat, [t.settings.learning_rate for t in active], [t.settings.weight_decay for t in active]
    )
    masks_from = torch.Generator().manual_seed(seed)
    on_device = device.type != "cpu"
    epoch = 0
    while active:
        epoch += 1
        started = time.perf_counter()
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for start in range(0, len(train), batch_size):
            index = order[start : start + batch_size]
            numeric, categorical, labels = train.numeric[index], train.categorical[index], train.labels[index]
            if on_device:  # on the CPU the rows are already where they are used
                numeric = numeric.to(device, non_blocking=True)
                categorical = categorical.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
            masks = dropout_masks(len(index), stack.hidden_sizes, stack.dropout, masks_from, device)
            # A batch's last few rows: each trial's products as a single network runs them.
            batched = len(index) == batch_size
            gradient = stack.training_gradient(numeric, categorical, labels, task, masks, batched)
            optimiser.step(stack.flat, gradient)
        seconds = time.perf_counter() - started
        for position, (trial, (val_loss, val_score)) in enumerate(
            zip(active, _validate(stack, valid, device, batch_size, task), strict=True)
        ):
            state = trial.state
            state.history.append(
                EpochStats(epoch, float("nan"), val_loss, val_score, seconds, len(train) / seconds)
            )
            state.epochs_done = epoch
            if val_score > state.best_score:
                state.best_score, state.best_epoch, state.stale_epochs = val_score, epoch, 0
                trial.best = stack.state_of(position)
            else:
                state.stale_epochs += 1
                state.stopped_early = state.stale_epochs >= trial.settings.patience
        if any(t.done for t in active):
            rows = torch.tensor(
                [i for i, t in enumerate(active) if not t.done], dtype=torch.long, device=device
            )
            stack.keep(rows)
            optimiser.keep(rows)
            active = [t for t in active if not t.done]
    for trial in trials:
        if trial.best is not None:
            trial.network.load_state_dict(trial.best)
    return [t.state for t in trials]
