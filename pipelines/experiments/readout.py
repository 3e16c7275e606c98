"""An experiment's readout: each arm's metric from the labelled predictions it served, their
difference with a 95 % interval, the always-valid p-value over looks every `look_every` rows, the
sample size the power calculation asks for, and the decision: promote, keep the champion, or
continue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.experiments.stats import (
    ArmEstimate,
    always_valid_p_values,
    auc,
    conversion,
    hanley_mcneil,
    normal_interval,
    sample_size,
)
from pipelines.monitoring.quality import LABEL

METRICS = ("auc", "conversion")
DEFAULT_EFFECT = {"auc": 0.02, "conversion": 0.01}  # minimum detectable effects, absolute
LONGEST_WAIT = 4  # without a significant difference, stop at this many times the planned rows


@dataclass(frozen=True)
class Readout:
    metric: str
    better: str  # higher | lower
    champion: str
    challenger: str
    rows: dict[str, int]
    values: dict[str, float]
    improvement: float  # challenger over champion, in the better direction
    interval: tuple[float, float]  # 95 %, fixed-horizon, of the improvement
    p_value: float  # always valid
    planned_rows: int  # per arm, from the power calculation
    decision: str  # promote | keep | continue
    reason: str
    looks: list[dict[str, float]] = field(default_factory=list)


def _estimate(metric: str, frame: pd.DataFrame) -> ArmEstimate:
    labels = frame[LABEL].to_numpy(np.float64)
    return auc(labels, frame["prediction"].to_numpy(np.float64)) if metric == "auc" else conversion(labels)


def _unit_variance(metric: str, labelled: pd.DataFrame, champion: ArmEstimate) -> float:
    """One row's share of an arm's variance, at the champion's value and the pooled base rate."""
    rate = float(labelled[LABEL].mean()) if len(labelled) else 0.5
    rate = min(max(rate, 0.01), 0.99)
    if metric == "conversion":
        return rate * (1 - rate)
    value = champion.value if champion.value == champion.value else 0.75
    rows = 1_000
    return hanley_mcneil(value, max(1, round(rows * rate)), max(1, round(rows * (1 - rate)))) * rows


def read_out(
    labelled: pd.DataFrame,
    champion: str,
    challenger: str,
    metric: str = "auc",
    better: str = "higher",
    alpha: float = 0.05,
    effect: float | None = None,
    look_every: int = 100,
) -> Readout:
    """The readout of labelled predictions (variant, prediction, label, event_time) of both arms."""
    effect = effect or DEFAULT_EFFECT[metric]
    sign = 1.0 if better == "higher" else -1.0
    ordered = labelled[labelled["variant"].isin([champion, challenger])].sort_values(
        "event_time", kind="stable"
    )
    arms = ordered["variant"].to_numpy()
    looks: list[dict[str, float]] = []
    # The last look covers every row, so its estimates are the arms' final ones.
    for end in [*range(look_every, len(ordered), look_every), len(ordered)]:
        seen = ordered.iloc[:end]
        final_a, final_b = (_estimate(metric, seen[arms[:end] == arm]) for arm in (champion, challenger))
        difference, variance = sign * (final_b.value - final_a.value), final_a.variance + final_b.variance
        low, high = normal_interval(difference, variance)
        looks.append(
            {"rows": float(end), "improvement": difference, "variance": variance, "low": low, "high": high}
        )
    p_values = always_valid_p_values(
        np.array([look["improvement"] for look in looks]),
        np.array([look["variance"] for look in looks]),
        effect,
    )
    for look, p in zip(looks, p_values, strict=True):
        look["p_value"] = float(p)
    planned = sample_size(_unit_variance(metric, ordered, final_a), effect, alpha)
    last: dict[str, Any] = looks[-1]
    decision, reason = _decide(last, min(final_a.rows, final_b.rows), planned, alpha, effect)
    return Readout(
        metric,
        better,
        champion,
        challenger,
        {champion: final_a.rows, challenger: final_b.rows},
        {champion: final_a.value, challenger: final_b.value},
        float(last["improvement"]),
        (float(last["low"]), float(last["high"])),
        float(last["p_value"]),
        planned,
        decision,
        reason,
        looks,
    )


def _decide(last: dict[str, Any], rows: int, planned: int, alpha: float, effect: float) -> tuple[str, str]:
    if rows < planned:
        return (
            "continue",
            f"{rows:,} labelled rows in the smaller arm; the power calculation asks for {planned:,}",
        )
    if last["p_value"] <= alpha:
        if last["improvement"] > 0:
            return (
                "promote",
                f"the challenger is better by {last['improvement']:.4f} (always-valid p {last['p_value']:.4f})",
            )
        return (
            "keep",
            f"the challenger is worse by {-last['improvement']:.4f} (always-valid p {last['p_value']:.4f})",
        )
    if rows >= LONGEST_WAIT * planned:
        return "keep", f"no difference of {effect} or more after {rows:,} rows per arm"
    return "continue", f"no significant difference yet (always-valid p {last['p_value']:.3f})"
