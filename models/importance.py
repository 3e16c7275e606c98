"""Permutation importance: how much a metric drops when one feature's values are shuffled across
rows (Breiman, 2001), repeated with fresh shuffles for a confidence interval.

The rows are encoded once (`ModelBundle.shuffleable`) and each shuffle permutes one encoded column,
which is the same as shuffling the raw column: only the scoring is repeated. A segmented model's
rows are routed again after each shuffle, so shuffling its segment column moves rows between
models. One metric call may score several groups of rows (overall and per slice) from the same
shuffled predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.bundle import ModelBundle

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (the normal's 1.96 beyond).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass(frozen=True)
class Importance:
    feature: str
    drop: float  # mean drop of the metric over the repeats (positive: the model relies on it)
    low: float  # 95 % confidence interval of the mean drop
    high: float
    repeats: int


def t_quantile(degrees_of_freedom: int) -> float:
    """The two-sided 95 % quantile of Student's t."""
    return _T975[degrees_of_freedom - 1] if 1 <= degrees_of_freedom <= len(_T975) else 1.96


def summarise(feature: str, drops: Sequence[float]) -> Importance:
    values = np.asarray(drops, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Importance(feature, mean, mean, mean, len(values))
    half = t_quantile(len(values) - 1) * float(values.std(ddof=1)) / np.sqrt(len(values))
    return Importance(feature, mean, mean - half, mean + half, len(values))


def _largest_first(importance: Importance) -> tuple[bool, float]:
    return (importance.drop != importance.drop, -importance.drop)  # a NaN (no metric) last


def permutation_importance(
    bundle: ModelBundle,
    numeric: np.ndarray,
    categorical: Mapping[str, Sequence[object]],
    metric: Callable[[np.ndarray], Mapping[str, float]],
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, list[Importance]]:
    """For each group `metric` scores (its answer's keys), every feature's importance, largest first."""
    encoded, indexes, predict = bundle.shuffleable(numeric, categorical)
    reference = metric(predict(encoded, indexes))
    shuffles = np.random.default_rng(seed)
    drops: dict[str, dict[str, list[float]]] = {group: {} for group in reference}
    width = encoded.shape[1]
    for position, feature in enumerate(bundle.feature_names):
        for _ in range(repeats):
            order = torch.from_numpy(shuffles.permutation(len(encoded)))
            numbers, categories = encoded, indexes
            if position < width:
                numbers = encoded.clone()
                numbers[:, position] = encoded[order, position]
            else:
                categories = indexes.clone()
                categories[:, position - width] = indexes[order, position - width]
            shuffled = metric(predict(numbers, categories))
            for group, value in shuffled.items():
                drops[group].setdefault(feature, []).append(reference[group] - value)
    return {
        group: sorted((summarise(f, d) for f, d in by_feature.items()), key=_largest_first)
        for group, by_feature in drops.items()
    }
