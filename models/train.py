"""The training loop: seeded, early-stopping, mixed precision on CUDA, checkpoint every epoch.

The task picks the loss and the early-stopping score: binary cross-entropy and validation AUC for a
binary label, squared error (on a standardised target) and validation R^2 for regression.

Data parallel: when torch.distributed is initialised with more than one rank, the network is
wrapped in DistributedDataParallel. Every rank draws the same global permutation per epoch and
takes its share of each global batch; each rank's loss is its share of the global batch's mean, so
the averaged gradient is the one-process gradient of that batch. Only rank 0 writes checkpoints,
and the checkpoint does not depend on the world size: a run resumes with any number of ranks.

A run killed mid-way resumes from its last checkpoint: model, optimiser, scaler, RNG state and
history are restored, and epoch e always shuffles with seed (seed, e), so on CPU a resumed run
ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

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

    def blocks(self, rows: int) -> Iterator[TensorSplit]:
        """Consecutive slices of at most `rows` rows (views, not copies)."""
        for start in range(0, len(self), rows):
            stop = start + rows
            yield TensorSplit(self.numeric[start:stop], self.categorical[start:stop], self.labels[start:stop])


class ValidationData(Protocol):
    """What the loop scores every epoch: a split held as tensors, or one read block by block
    (the training job's validation split, which it does not hold)."""

    def __len__(self) -> int: ...

    def blocks(self, rows: int) -> Iterator[TensorSplit]: ...


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


class LoopSettings(Protocol):
    """What the loop reads from the training settings (models/ stays independent of the config layer)."""

    @property
    def max_epochs(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def patience(self) -> int: ...
    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class Ranks:
    """This process's place in data-parallel training (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> Ranks:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()


class Checkpointer(Protocol):
    def save(self, payload: bytes) -> None: ...

    def load(self) -> bytes | None: ...


def seed_everything(seed: int) -> None:
    """Seed every generator training touches; deterministic kernels where torch has them.

    The kernels are only switched on CUDA, where scatter-style kernels have nondeterministic
    variants: the CPU kernels this network uses are deterministic already, and the switch imports
    torch's compiler stack (2.4 s measured on the 2-core reference machine) to set one of its flags.
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)


def _evaluate(
    network: nn.Module, split: ValidationData, device: torch.device, batch_size: int, task: str
) -> tuple[float, float]:
    """Validation loss and selection score (AUC or R^2) of the network on a split."""
    network.eval()
    outputs, labels = [], []
    with torch.no_grad():
        for block in split.blocks(batch_size * 4):
            raw = network(block.numeric.to(device), block.categorical.to(device))
            outputs.append(answers(raw, task))
            labels.append(block.labels.numpy())
    predictions = np.concatenate(outputs) if outputs else np.zeros(0, np.float32)
    return validation_metrics(
        task, np.concatenate(labels) if labels else np.zeros(0, np.float32), predictions
    )


def answers(raw: torch.Tensor, task: str) -> np.ndarray:
    """What a network's raw outputs are scored as: probabilities (binary) or values, in float32."""
    return (torch.sigmoid(raw.float()) if task == "binary" else raw.float()).cpu().numpy()


def validation_metrics(task: str, labels: np.ndarray, predictions: np.ndarray) -> tuple[float, float]:
    """Validation loss (log loss, or squared error) and selection score (AUC or R^2)."""
    if task == "binary":
        loss = log_loss(labels, predictions)
    else:
        loss = float(np.mean((labels - predictions) ** 2)) if labels.size else float("nan")
    return loss, selection_score(task, labels, predictions)


def loss_for(task: str, reduction: str = "mean") -> nn.Module:
    """Binary cross-entropy on logits, or squared error on a standardised target."""
    if task not in ("binary", "regression"):
        raise ValueError(f"unknown task {task!r}")
    return nn.BCEWithLogitsLoss(reduction=reduction) if task == "binary" else nn.MSELoss(reduction=reduction)


def _all_reduced_sum(value: float, device: torch.device) -> float:
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item())


def _from_main(loss: float, score: float, device: torch.device) -> tuple[float, float]:
    tensor = torch.tensor([loss, score], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor[0].item()), float(tensor[1].item())


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
    valid: ValidationData,
    settings: LoopSettings,
    device: torch.device,
    checkpointer: Checkpointer | None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    extra: dict[str, Any] | None = None,
    task: str = "binary",
) -> tuple[TrainingState, dict[str, Any]]:
    """Train `network` in place, leaving it with its best weights (by validation AUC, or R^2).

    Returns the final state and the `extra` dict stored with the checkpoint (callers keep e.g. a
    tracking run id there so that a resumed run logs into the same tracking run). Without a
    checkpointer nothing is serialised (a sweep's trials are retried whole, with their chunk).
    """
    ranks = Ranks.current()
    seed_everything(settings.seed)
    network.to(device)
    model: nn.Module = network
    if ranks.world_size > 1:
        model = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    amp = uses_mixed_precision(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = loss_for(task)
    summed_loss = loss_for(task, reduction="sum")
    state = TrainingState()
    best_weights = copy.deepcopy(network.state_dict())
    extra = dict(extra or {})

    saved = checkpointer.load() if checkpointer is not None else None
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
        model.train()
        order = torch.randperm(
            len(train), generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch)
        )
        total_loss = 0.0
        for start in range(0, len(train), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < ranks.world_size:
                continue  # a last sliver smaller than the world: every rank skips it alike
            index = batch[ranks.rank :: ranks.world_size]
            numeric = train.numeric[index].to(device, non_blocking=True)
            categorical = train.categorical[index].to(device, non_blocking=True)
            labels = train.labels[index].to(device, non_blocking=True)
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, enabled=amp):
                outputs = model(numeric, categorical)
                if ranks.world_size == 1:
                    loss = loss_fn(outputs, labels)
                    batch_loss = float(loss.detach()) * len(index)
                else:  # this rank's share of the global mean; DDP averages the W shares' gradients
                    total = summed_loss(outputs.float(), labels)
                    loss = total * ranks.world_size / len(batch)
                    batch_loss = float(total.detach())
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total_loss += batch_loss
        if ranks.world_size > 1:
            total_loss = _all_reduced_sum(total_loss, device)
        val_loss, val_score = _evaluate(network, valid, device, settings.batch_size, task)
        if ranks.world_size > 1:  # rank 0's judgement, so every rank stops at the same epoch
            val_loss, val_score = _from_main(val_loss, val_score, device)
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
        if ranks.is_main and checkpointer is not None:
            checkpointer.save(_serialise(network, best_weights, optimiser, scaler, state, extra))
        if on_epoch is not None:
            on_epoch(stats)

    network.load_state_dict(best_weights)
    return state, extra
