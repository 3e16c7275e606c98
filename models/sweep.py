"""The sweep engine: many small trainings in one process, each with its own hyperparameters.

A trial is the training loop of `models.train.fit` (same seed, same batches, same early stopping),
minus what a standalone run needs and a trial does not: no checkpoint is serialised, no tracking
run is opened, and the tensors are prepared once and shared by every trial of a segment. So a trial
ends with the metrics a standalone run with the same settings ends with.

Trials run one after another. Stacking them into one batched computation (`torch.func` + `vmap`)
pays on a GPU, where one small trial cannot fill the device; on CPU small networks are already
compute-bound (measured 1.0x for 1,000 small MLPs on the 2-core reference machine), so the engine
does not stack there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from models.train import TensorSplit, fit, seed_everything


@dataclass(frozen=True)
class TrialSettings:
    """The loop settings of one trial (`models.train.LoopSettings`)."""

    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    seed: int

    def with_parameters(self, parameters: dict[str, Any]) -> TrialSettings:
        """These settings with a trial's learning rate, weight decay, epochs and batch size."""
        updates: dict[str, Any] = {}
        if "learning_rate" in parameters:
            updates["learning_rate"] = float(parameters["learning_rate"])
        if "weight_decay" in parameters:
            updates["weight_decay"] = float(parameters["weight_decay"])
        if "epochs" in parameters:
            updates["max_epochs"] = int(parameters["epochs"])
        if "batch_size" in parameters:
            updates["batch_size"] = int(parameters["batch_size"])
        return replace(self, **updates)


@dataclass(frozen=True)
class TrialOutcome:
    trial: int
    score: float  # the best validation score (AUC or R^2)
    best_epoch: int
    epochs: int
    val_loss: float  # at the best epoch
    seconds: float
    stopped_early: bool


def run_trial(
    network: Callable[[], nn.Module],
    train: TensorSplit,
    valid: TensorSplit,
    settings: TrialSettings,
    device: torch.device,
    task: str,
) -> tuple[nn.Module, TrialOutcome]:
    """Train one trial: its network is built right after seeding, as a standalone run builds it."""
    started = time.perf_counter()
    seed_everything(settings.seed)
    model = network()
    state, _ = fit(model, train, valid, settings, device, checkpointer=None, task=task)
    best = state.history[state.best_epoch - 1] if state.best_epoch else None
    outcome = TrialOutcome(
        trial=-1,
        score=state.best_score,
        best_epoch=state.best_epoch,
        epochs=state.epochs_done,
        val_loss=best.val_loss if best else float("nan"),
        seconds=time.perf_counter() - started,
        stopped_early=state.stopped_early,
    )
    return model, outcome


def run_trials(
    network: Callable[[dict[str, Any]], nn.Module],
    train: TensorSplit,
    valid: TensorSplit,
    trials: Iterable[tuple[int, dict[str, Any]]],
    base: TrialSettings,
    device: torch.device,
    task: str,
    on_trial: Callable[[TrialOutcome], None] | None = None,
    on_model: Callable[[TrialOutcome, nn.Module], None] | None = None,
) -> list[TrialOutcome]:
    """Every trial (index, parameters) on one segment's tensors, in order; `on_model` sees each
    trained network (with its best weights) before the next trial starts."""
    outcomes = []
    for index, parameters in trials:

        def build(chosen: dict[str, Any] = parameters) -> nn.Module:
            return network(chosen)

        model, outcome = run_trial(build, train, valid, base.with_parameters(parameters), device, task)
        outcome = replace(outcome, trial=index)
        outcomes.append(outcome)
        if on_model is not None:
            on_model(outcome, model)
        if on_trial is not None:
            on_trial(outcome)
    return outcomes
