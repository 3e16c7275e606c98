"""The sweep engine: many small trainings in one process, each with its own hyperparameters.

A trial is the training loop of `models.train.fit` (same seed, same batches, same early stopping),
minus what a standalone run needs and a trial does not: no checkpoint is serialised, no tracking
run is opened, and the tensors are prepared once and shared by every trial of a segment. So a trial
ends with the metrics a standalone run with the same settings ends with.

Stacked (the default): the trials that share a network shape, seed and batch size train side by
side as one batched computation (`models.stacked_fit`), each with its own learning rate, weight
decay, epochs and early stopping. A small trial's step is mostly fixed cost (on the 2-core
reference machine about 3 ms of dispatch around microseconds of arithmetic), which a stack pays
once per step for all its trials; on a GPU one small trial cannot fill the device either. A trial's
metrics match its standalone run (within 1e-5 in `tests/model/test_stacked.py`; a full batch's step
bit for bit). Unstacked, trials run one after another through `models.train.fit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from models.allocator import keep_freed_memory
from models.network import TabularNet
from models.stacked import shape_of
from models.stacked_fit import fit_stack
from models.train import TensorSplit, TrainingState, fit, seed_everything

MAX_STACK = 128  # trials per stack: bounds the (trials x validation rows) predictions held at once


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


def _outcome(trial: int, state: TrainingState, seconds: float) -> TrialOutcome:
    best = state.history[state.best_epoch - 1] if state.best_epoch else None
    return TrialOutcome(
        trial=trial,
        score=state.best_score,
        best_epoch=state.best_epoch,
        epochs=state.epochs_done,
        val_loss=best.val_loss if best else float("nan"),
        seconds=seconds,
        stopped_early=state.stopped_early,
    )


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
    return model, _outcome(-1, state, time.perf_counter() - started)


@dataclass(frozen=True)
class _Built:
    trial: int
    settings: TrialSettings
    network: nn.Module


def _stacks(built: list[_Built]) -> list[list[_Built]]:
    """Trials grouped by what a stack shares (network shape, seed, batch size), in trial order,
    at most `MAX_STACK` to a group; a network that is not a `TabularNet` trains alone."""
    groups: dict[object, list[_Built]] = {}
    for item in built:
        key: object = (
            (item.settings.seed, item.settings.batch_size, shape_of(item.network))
            if isinstance(item.network, TabularNet)
            else ("alone", item.trial)
        )
        groups.setdefault(key, []).append(item)
    return [group[i : i + MAX_STACK] for group in groups.values() for i in range(0, len(group), MAX_STACK)]


def _train_stack(
    group: list[_Built], train: TensorSplit, valid: TensorSplit, device: torch.device, task: str
) -> list[TrialOutcome]:
    started = time.perf_counter()
    if len(group) == 1 or not all(isinstance(item.network, TabularNet) for item in group):
        states = [
            fit(item.network, train, valid, item.settings, device, checkpointer=None, task=task)[0]
            for item in group
        ]
    else:
        networks = [item.network for item in group if isinstance(item.network, TabularNet)]
        states = fit_stack(networks, [item.settings for item in group], train, valid, device, task)
    seconds = time.perf_counter() - started
    epochs = sum(state.epochs_done for state in states) or 1
    # A stack's trials share its time: each is charged in proportion to the epochs it trained.
    return [
        _outcome(item.trial, state, seconds * state.epochs_done / epochs)
        for item, state in zip(group, states, strict=True)
    ]


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
    stacked: bool = True,
) -> list[TrialOutcome]:
    """Every trial (index, parameters) on one segment's tensors; outcomes in trial order.

    `on_trial` sees each outcome as its trial ends; `on_model` sees each trained network (with its
    best weights), in trial order, once every trial has ended."""
    listed = list(trials)
    if not stacked:
        outcomes, models = [], []
        for index, parameters in listed:

            def build(chosen: dict[str, Any] = parameters) -> nn.Module:
                return network(chosen)

            model, outcome = run_trial(build, train, valid, base.with_parameters(parameters), device, task)
            outcomes.append(replace(outcome, trial=index))
            models.append(model)
            if on_trial is not None:
                on_trial(outcomes[-1])
    else:
        keep_freed_memory()  # a stack's step allocates the same tensors of some MB every time
        built = []
        for index, parameters in listed:
            settings = base.with_parameters(parameters)
            seed_everything(settings.seed)  # each network starts as its standalone run's starts
            built.append(_Built(index, settings, network(parameters)))
        by_trial: dict[int, TrialOutcome] = {}
        for group in _stacks(built):
            for outcome in _train_stack(group, train, valid, device, task):
                by_trial[outcome.trial] = outcome
                if on_trial is not None:
                    on_trial(outcome)
        outcomes = [by_trial[index] for index, _ in listed]
        models = [item.network for item in built]
    if on_model is not None:
        for outcome, model in zip(outcomes, models, strict=True):
            on_model(outcome, model)
    return outcomes
