"""Training curves as a PNG: loss per epoch (train and validation) and the validation score."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from models.train import EpochStats


def training_curves_png(
    history: list[EpochStats],
    best_epoch: int,
    title: str,
    score_name: str = "ROC AUC",
    loss_name: str = "log loss",
) -> bytes:
    epochs = [h.epoch for h in history]
    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [h.train_loss for h in history], marker="o", label="train")
    loss_ax.plot(epochs, [h.val_loss for h in history], marker="o", label="validation")
    loss_ax.set(xlabel="epoch", ylabel=loss_name, title="Loss")
    loss_ax.legend()
    score_ax.plot(epochs, [h.val_score for h in history], marker="o", color="tab:green")
    score_ax.axvline(best_epoch, linestyle="--", color="grey", label=f"best epoch {best_epoch}")
    score_ax.set(xlabel="epoch", ylabel=score_name, title=f"Validation {score_name}")
    score_ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
