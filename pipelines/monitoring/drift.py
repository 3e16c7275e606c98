"""Drift per feature, judged by effect size, never by p-value.

With a million rows every tiny difference is "significant", so a test statistic's p-value would
fire constantly. The policy below uses magnitudes instead:

- numeric features: Population Stability Index over the baseline's deciles (warn at 0.1, alert at
  0.25, the usual credit-risk thresholds), plus the Wasserstein distance in baseline standard
  deviations, reported for context;
- categorical features: Jensen-Shannon distance (base 2, from 0 to 1) between category frequencies
  (warn at 0.1, alert at 0.2).

A feature with fewer than `min_rows` current rows is reported as `insufficient`, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

_EPS = 1e-4


class DriftStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    ALERT = "alert"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True)
class DriftPolicy:
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    js_warn: float = 0.1
    js_alert: float = 0.2
    bins: int = 10
    min_rows: int = 200


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    score: float
    status: DriftStatus
    baseline_rows: int
    current_rows: int
    wasserstein_in_std: float | None = None


@dataclass
class DriftReport:
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def status(self) -> DriftStatus:
        ranked = [DriftStatus.ALERT, DriftStatus.WARN, DriftStatus.OK]
        statuses = {f.status for f in self.features}
        return next((s for s in ranked if s in statuses), DriftStatus.INSUFFICIENT)

    @property
    def max_psi(self) -> float:
        scores = [
            f.score for f in self.features if f.kind == "numeric" and f.status != DriftStatus.INSUFFICIENT
        ]
        return max(scores, default=0.0)

    def alerts(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.status == DriftStatus.ALERT]


@dataclass(frozen=True)
class DriftImpact:
    """How much a feature's drift matters to the model: its drift relative to the alert threshold
    (so PSI and Jensen-Shannon compare) times its share of the model's permutation importance."""

    feature: str
    drift: float
    importance: float
    impact: float


def drift_impact(
    report: DriftReport, importance: Mapping[str, float], policy: DriftPolicy
) -> list[DriftImpact]:
    """Every measured feature the model uses, the drift that matters most first."""
    total = sum(max(v, 0.0) for v in importance.values()) or 1.0
    ranked = []
    for drift in report.features:
        if drift.feature not in importance or drift.status == DriftStatus.INSUFFICIENT:
            continue
        if drift.score != drift.score:  # NaN: nothing measured
            continue
        relative = drift.score / (policy.psi_alert if drift.kind == "numeric" else policy.js_alert)
        share = max(importance[drift.feature], 0.0) / total
        ranked.append(DriftImpact(drift.feature, relative, importance[drift.feature], relative * share))
    return sorted(ranked, key=lambda d: -d.impact)


def psi(baseline: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population Stability Index over the baseline's quantile bins (open-ended outer bins)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=len(edges) + 1) / len(
        baseline
    )
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(
        current
    )
    expected, actual = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def js_distance(baseline: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (base 2) between two categorical frequency distributions."""
    categories = sorted(set(baseline.dropna().astype(str)) | set(current.dropna().astype(str)))
    p = baseline.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy(float)
    q = current.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy(float)
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def _status(score: float, warn: float, alert: float) -> DriftStatus:
    return DriftStatus.ALERT if score >= alert else DriftStatus.WARN if score >= warn else DriftStatus.OK


def compare(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    policy: DriftPolicy = DriftPolicy(),
) -> DriftReport:
    """Drift of every listed feature of `current` against `baseline`."""
    report = DriftReport()
    for name in numeric:
        base = baseline[name].dropna().to_numpy(float)
        now = current[name].dropna().to_numpy(float)
        if len(now) < policy.min_rows or len(base) < policy.min_rows:
            report.features.append(
                FeatureDrift(name, "numeric", float("nan"), DriftStatus.INSUFFICIENT, len(base), len(now))
            )
            continue
        score = psi(base, now, policy.bins)
        spread = float(np.std(base)) or 1.0
        report.features.append(
            FeatureDrift(
                name,
                "numeric",
                score,
                _status(score, policy.psi_warn, policy.psi_alert),
                len(base),
                len(now),
                wasserstein_distance(base, now) / spread,
            )
        )
    for name in categorical:
        base_series, now_series = baseline[name].dropna(), current[name].dropna()
        if len(now_series) < policy.min_rows or len(base_series) < policy.min_rows:
            report.features.append(
                FeatureDrift(
                    name,
                    "categorical",
                    float("nan"),
                    DriftStatus.INSUFFICIENT,
                    len(base_series),
                    len(now_series),
                )
            )
            continue
        score = js_distance(base_series, now_series)
        report.features.append(
            FeatureDrift(
                name,
                "categorical",
                score,
                _status(score, policy.js_warn, policy.js_alert),
                len(base_series),
                len(now_series),
            )
        )
    return report
