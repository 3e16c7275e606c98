"""Binary classification metrics in plain numpy (no scikit-learn at training or serving time)."""

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
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class."""
    y, p = _arrays(labels, scores)
    positives = y.sum()
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sorted_scores = p[order]
    ranks = np.empty(y.size, dtype=np.float64)
    # Average ranks over runs of tied scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [y.size]))
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: ArrayLike, scores: ArrayLike) -> float:
    y, p = _arrays(labels, scores)
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


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
