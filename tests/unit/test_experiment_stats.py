"""The experiment readout's statistics: peeking every 100 requests keeps the always-valid test at
its nominal level over 200 A/A experiments (a fixed-horizon test does not), and a readout reaches the
right decision when the challenger is truly better and when it is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.experiments.readout import read_out
from pipelines.experiments.stats import always_valid_p_values, sample_size
from pipelines.monitoring.quality import LABEL

ALPHA = 0.05


def _peeking_false_positives(experiments: int, requests: int, every: int, seed: int) -> tuple[float, float]:
    """Share of A/A experiments (both arms convert at 10 %) that a test rejects at some look, for the
    always-valid p-value and for a fixed-horizon z-test looked at just as often."""
    rng = np.random.default_rng(seed)
    always, naive = 0, 0
    for _ in range(experiments):
        outcomes = rng.random((2, requests // 2)) < 0.10
        looks = np.arange(every // 2, requests // 2 + 1, every // 2)
        rates = np.cumsum(outcomes, axis=1)[:, looks - 1] / looks
        variance = (rates * (1 - rates) / looks).sum(0)
        difference = rates[1] - rates[0]
        always += bool((always_valid_p_values(difference, variance, tau=0.01) <= ALPHA).any())
        z = np.abs(difference) / np.sqrt(np.where(variance > 0, variance, np.inf))
        naive += bool((z >= 1.96).any())
    return always / experiments, naive / experiments


def test_peeking_every_100_requests_does_not_inflate_false_positives() -> None:
    always, naive = _peeking_false_positives(200, 10_000, 100, seed=7)
    assert always <= ALPHA  # 200 A/A experiments, 100 looks each
    assert naive > 3 * ALPHA  # the fixed-horizon test, looked at as often, is not valid


def _arms(rows: int, noise: dict[str, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(list(noise), rows)
    label = rng.random(rows) < 0.3
    signal = label + rng.normal(size=rows) * np.vectorize(noise.get)(variant)
    return pd.DataFrame(
        {
            "variant": variant,
            "prediction": 1 / (1 + np.exp(-signal)),
            LABEL: label.astype(float),
            "event_time": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="s"),
        }
    )


def test_a_truly_better_challenger_is_promoted_and_an_equal_one_is_kept() -> None:
    # a minimum detectable effect of 0.05 AUC: the power calculation asks for about 2,000 rows per arm
    better = read_out(_arms(20_000, {"v1": 1.2, "v2": 0.8}, 1), "v1", "v2", "auc", effect=0.05)
    assert better.decision == "promote" and better.improvement > 0.02
    assert (
        better.interval[0] > 0 and better.p_value <= ALPHA and better.looks[-1]["p_value"] == better.p_value
    )
    equal = read_out(_arms(20_000, {"v1": 1.0, "v2": 1.0}, 2), "v1", "v2", "auc", effect=0.05)
    assert equal.decision == "keep" and "no difference" in equal.reason
    worse = read_out(_arms(20_000, {"v1": 0.8, "v2": 1.2}, 3), "v1", "v2", "auc", effect=0.05)
    assert worse.decision == "keep" and "worse" in worse.reason
    early = read_out(_arms(400, {"v1": 1.2, "v2": 0.8}, 4), "v1", "v2", "auc", effect=0.05)
    assert early.decision == "continue" and "power calculation" in early.reason


def test_conversion_lower_is_better_and_the_planned_size_is_the_power_calculation() -> None:
    frame = _arms(40_000, {"v1": 1.0, "v2": 1.0}, 5)
    frame[LABEL] = (
        np.random.default_rng(6).random(len(frame)) < np.where(frame["variant"] == "v2", 0.08, 0.12)
    ).astype(float)
    readout = read_out(frame, "v1", "v2", "conversion", better="lower")
    assert readout.decision == "promote" and readout.improvement == pytest.approx(0.04, abs=0.01)
    assert sample_size(0.1 * 0.9, 0.01) == pytest.approx(
        2 * 0.09 * (1.959964 + 0.841621) ** 2 / 0.0001, rel=1e-3
    )
