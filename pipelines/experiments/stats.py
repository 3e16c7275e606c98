"""The statistics of an experiment's readout.

The difference between the arms is read with a mixture sequential probability ratio test (mSPRT;
Johari, Pekelis and Walsh, "Always valid inference", 2017): for an estimate that is approximately
normal with variance V, mixing the alternative over N(0, tau^2) gives the likelihood ratio
sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2))), and 1 / its running maximum is a p-value
that stays valid however often the experiment is looked at (a fixed-horizon z-test checked after
every 100 requests rejects a true null several times more often than its alpha;
tests/unit/test_experiment_stats.py shows both). The sample size to wait for before deciding comes
from the usual two-sample power calculation for the minimum detectable effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from models.metrics import roc_auc

_NORMAL = NormalDist()


@dataclass(frozen=True)
class ArmEstimate:
    value: float  # the arm's metric: AUC, or the outcome rate
    variance: float  # of that estimate
    rows: int


def conversion(labels: np.ndarray) -> ArmEstimate:
    """The outcome rate of an arm and the variance of that rate."""
    rows = len(labels)
    rate = float(labels.mean()) if rows else float("nan")
    return ArmEstimate(rate, rate * (1 - rate) / rows if rows else float("inf"), rows)


def auc(labels: np.ndarray, scores: np.ndarray) -> ArmEstimate:
    """An arm's AUC with Hanley and McNeil's (1982) variance."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return ArmEstimate(float("nan"), float("inf"), len(labels))
    value = roc_auc(labels, scores)
    return ArmEstimate(value, hanley_mcneil(value, positives, negatives), len(labels))


def hanley_mcneil(value: float, positives: int, negatives: int) -> float:
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    spread = value * (1 - value) + (positives - 1) * (q1 - value**2) + (negatives - 1) * (q2 - value**2)
    return max(spread, 1e-12) / (positives * negatives)


def msprt_p_value(difference: float, variance: float, tau: float) -> float:
    """1 / the mixture likelihood ratio of one look (take the running minimum over looks)."""
    if not (variance > 0 and math.isfinite(variance) and math.isfinite(difference)):
        return 1.0
    total = variance + tau**2
    log_ratio = 0.5 * math.log(variance / total) + tau**2 * difference**2 / (2 * variance * total)
    return min(1.0, math.exp(-log_ratio))


def always_valid_p_values(differences: np.ndarray, variances: np.ndarray, tau: float) -> np.ndarray:
    """The always-valid p-value after each look of a sequence of looks."""
    single = np.array([msprt_p_value(d, v, tau) for d, v in zip(differences, variances, strict=True)])
    return np.minimum.accumulate(single) if len(single) else single


def sample_size(unit_variance: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Rows per arm for a two-sided test of level `alpha` to detect `effect` with `power`, when one
    arm's estimate has variance unit_variance / rows."""
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    return math.ceil(2 * unit_variance * z**2 / effect**2)


def normal_interval(difference: float, variance: float, level: float = 0.95) -> tuple[float, float]:
    half = _NORMAL.inv_cdf(0.5 + level / 2) * math.sqrt(variance) if math.isfinite(variance) else float("inf")
    return difference - half, difference + half
