"""Binary classification and regression metrics in plain numpy (no scikit-learn at training or serving time)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_EPS = 1e-7


def _arrays(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {p.size}")
    return y, p


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class.

    Each run of tied scores adds its average rank once per positive in it, so beside the sort order
    only narrow arrays are held: scores in their own precision, one flag per row (training scores
    millions of validation rows every epoch; float64 ranks per row cost five times the memory)."""
    y, p = np.asarray(labels).ravel(), np.asarray(scores).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {p.size}")
    positive = y == 1
    positives = int(positive.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    sorted_scores, positive_sorted = p[order], positive[order]
    del order
    run_starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    run_ends = np.append(run_starts[1:], y.size)
    average_rank = (run_starts + run_ends + 1) / 2.0
    positives_per_run = np.add.reduceat(positive_sorted, run_starts, dtype=np.int64)
    rank_sum = float((average_rank * positives_per_run).sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def log_loss(labels: ArrayLike, scores: ArrayLike) -> float:
    """Mean binary cross-entropy of scores clipped to [1e-7, 1 - 1e-7], computed in place."""
    y, p = _arrays(labels, scores)
    p = np.clip(p, _EPS, 1 - _EPS)
    loss = np.log(p)
    loss *= y
    np.subtract(1.0, p, out=p)
    np.log(p, out=p)
    p *= 1 - y
    loss += p
    return float(-np.mean(loss))


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve, as the mean precision at each positive."""
    y, p = _arrays(labels, scores)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    hits = y[order]
    precision_at = np.cumsum(hits) / np.arange(1, y.size + 1)
    return float((precision_at * hits).sum() / hits.sum())


def brier(labels: ArrayLike, scores: ArrayLike) -> float:
    y, p = _arrays(labels, scores)
    return float(np.mean((p - y) ** 2))


def classification_metrics(labels: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """The metrics reported for every model and every slice."""
    y, p = _arrays(labels, scores)
    return {
        "auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "average_precision": average_precision(y, p),
        "brier": brier(y, p),
        "accuracy": float(np.mean((p >= threshold) == (y == 1))),
        "positive_rate": float(y.mean()) if y.size else float("nan"),
        "rows": float(y.size),
    }


def binary_log_loss_skill(labels: ArrayLike, scores: ArrayLike, base_rate: float) -> float:
    """1 - log loss / log loss of always predicting `base_rate` (0: no better than the base rate)."""
    y, p = _arrays(labels, scores)
    baseline = log_loss(y, np.full_like(y, base_rate))
    return float(1 - log_loss(y, p) / baseline) if baseline > 0 else float("nan")


def r2(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Coefficient of determination; NaN when the labels do not vary."""
    y, p = _arrays(labels, predictions)
    total = float(np.sum((y - y.mean()) ** 2)) if y.size else 0.0
    return float(1 - np.sum((y - p) ** 2) / total) if total > 0 else float("nan")


def regression_metrics(
    labels: ArrayLike, predictions: ArrayLike, baseline: float | None = None
) -> dict[str, float]:
    """The metrics reported for every regression model and slice; `baseline` is the training mean."""
    y, p = _arrays(labels, predictions)
    if y.size == 0:
        nan = float("nan")
        return {
            "r2": nan,
            "rmse": nan,
            "mae": nan,
            "rmse_skill": nan,
            "mean_label": nan,
            "mean_prediction": nan,
            "rows": 0.0,
        }
    rmse = float(np.sqrt(np.mean((y - p) ** 2)))
    skill = float("nan")
    if baseline is not None:
        baseline_rmse = float(np.sqrt(np.mean((y - baseline) ** 2)))
        skill = 1 - rmse / baseline_rmse if baseline_rmse > 0 else float("nan")
    return {
        "r2": r2(y, p),
        "rmse": rmse,
        "mae": float(np.mean(np.abs(y - p))),
        "rmse_skill": skill,
        "mean_label": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "rows": float(y.size),
    }


def task_metrics(
    task: str, labels: ArrayLike, predictions: ArrayLike, baseline: float | None = None
) -> dict[str, float]:
    """The metrics of a task ("binary" or "regression") on one set of rows."""
    if task == "regression":
        return regression_metrics(labels, predictions, baseline)
    metrics = classification_metrics(labels, predictions)
    if baseline is not None:
        metrics["log_loss_skill"] = binary_log_loss_skill(labels, predictions, baseline)
    return metrics


def selection_score(task: str, labels: ArrayLike, predictions: ArrayLike) -> float:
    """Higher is better: what early stopping and champion comparison use (AUC, or R^2)."""
    return roc_auc(labels, predictions) if task == "binary" else r2(labels, predictions)


SELECTION_METRIC = {"binary": "auc", "regression": "r2"}
