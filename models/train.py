"""The training loop: seeded, early-stopping, mixed precision on CUDA, checkpoint every epoch.

The task picks the loss and the early-stopping score: binary cross-entropy and validation AUC for a
binary label, squared error (on a standardised target) and validation R^2 for regression.

A run killed mid-way resumes from its last checkpoint: model, optimiser, scaler, RNG state and
history are restored, and epoch e always shuffles with seed (seed, e), so on CPU a resumed run
ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import io
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mlops.settings import TrainingSettings
from models.device import uses_mixed_precision
from models.metrics import log_loss, selection_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorSplit:
    numeric: torch.Tensor
    categorical: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_score: float  # AUC (binary) or R^2 (regression): higher is better
    seconds: float
    samples_per_second: float


@dataclass
class TrainingState:
    epochs_done: int = 0
    best_score: float = float("-inf")
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[EpochStats] = field(default_factory=list)
    resumed_from: int = 0
    stopped_early: bool = False


class Checkpointer(Protocol):
    def save(self, payload: bytes) -> None: ...

    def load(self) -> bytes | None: ...


def seed_everything(seed: int) -> None:
    """Seed every generator training touches; deterministic kernels where torch has them."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _evaluate(
    network: nn.Module, split: TensorSplit, device: torch.device, batch_size: int, task: str
) -> tuple[float, float]:
    """Validation loss and selection score (AUC or R^2) of the network on a split."""
    network.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(split), batch_size * 4):
            stop = start + batch_size * 4
            raw = network(split.numeric[start:stop].to(device), split.categorical[start:stop].to(device))
            outputs.append((torch.sigmoid(raw.float()) if task == "binary" else raw.float()).cpu().numpy())
    predictions = np.concatenate(outputs) if outputs else np.zeros(0)
    labels = split.labels.numpy()
    if task == "binary":
        loss = log_loss(labels, predictions)
    else:
        loss = float(np.mean((labels - predictions) ** 2)) if labels.size else float("nan")
    return loss, selection_score(task, labels, predictions)


def loss_for(task: str) -> nn.Module:
    """Binary cross-entropy on logits, or squared error on a standardised target."""
    if task not in ("binary", "regression"):
        raise ValueError(f"unknown task {task!r}")
    return nn.BCEWithLogitsLoss() if task == "binary" else nn.MSELoss()


def _serialise(
    network: nn.Module,
    best_weights: dict[str, torch.Tensor],
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    state: TrainingState,
    extra: dict[str, Any],
) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {
            "network": network.state_dict(),
            "best_weights": best_weights,
            "optimiser": optimiser.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "state": {**asdict(state), "history": [asdict(h) for h in state.history]},
            "extra": extra,
        },
        buffer,
    )
    return buffer.getvalue()


def fit(
    network: nn.Module,
    train: TensorSplit,
    valid: TensorSplit,
    settings: TrainingSettings,
    device: torch.device,
    checkpointer: Checkpointer,
    on_epoch: Callable[[EpochStats], None] | None = None,
    extra: dict[str, Any] | None = None,
    task: str = "binary",
) -> tuple[TrainingState, dict[str, Any]]:
    """Train `network` in place, leaving it with its best weights (by validation AUC, or R^2).

    Returns the final state and the `extra` dict stored with the checkpoint (callers keep e.g. a
    tracking run id there so that a resumed run logs into the same tracking run).
    """
    seed_everything(settings.seed)
    network.to(device)
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    amp = uses_mixed_precision(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = loss_for(task)
    state = TrainingState()
    best_weights = copy.deepcopy(network.state_dict())
    extra = dict(extra or {})

    saved = checkpointer.load()
    if saved is not None:
        checkpoint = torch.load(io.BytesIO(saved), map_location=device, weights_only=False)
        network.load_state_dict(checkpoint["network"])
        best_weights = checkpoint["best_weights"]
        optimiser.load_state_dict(checkpoint["optimiser"])
        scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["rng"])
        raw = checkpoint["state"]
        state = TrainingState(**{**raw, "history": [EpochStats(**h) for h in raw["history"]]})
        state.resumed_from = state.epochs_done
        extra = {**checkpoint["extra"], **{k: v for k, v in extra.items() if k not in checkpoint["extra"]}}
        log.info("resuming from the checkpoint after epoch %d", state.epochs_done)

    while state.epochs_done < settings.max_epochs and not state.stopped_early:
        epoch = state.epochs_done + 1
        started = time.perf_counter()
        network.train()
        order = torch.randperm(
            len(train), generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch)
        )
        total_loss = 0.0
        for start in range(0, len(train), settings.batch_size):
            index = order[start : start + settings.batch_size]
            numeric = train.numeric[index].to(device, non_blocking=True)
            categorical = train.categorical[index].to(device, non_blocking=True)
            labels = train.labels[index].to(device, non_blocking=True)
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, enabled=amp):
                loss = loss_fn(network(numeric, categorical), labels)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total_loss += float(loss.detach()) * len(index)
        val_loss, val_score = _evaluate(network, valid, device, settings.batch_size, task)
        seconds = time.perf_counter() - started
        stats = EpochStats(
            epoch, total_loss / max(len(train), 1), val_loss, val_score, seconds, len(train) / seconds
        )
        state.history.append(stats)
        state.epochs_done = epoch
        if val_score > state.best_score:
            state.best_score, state.best_epoch, state.stale_epochs = val_score, epoch, 0
            best_weights = copy.deepcopy(network.state_dict())
        else:
            state.stale_epochs += 1
            state.stopped_early = state.stale_epochs >= settings.patience
        checkpointer.save(_serialise(network, best_weights, optimiser, scaler, state, extra))
        if on_epoch is not None:
            on_epoch(stats)

    network.load_state_dict(best_weights)
    return state, extra
