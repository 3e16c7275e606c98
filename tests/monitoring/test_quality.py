"""Live quality: every captured prediction's fate is counted, labels join by entity and time, and a
version is judged against its evaluation overall and per slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.monitoring.quality import LABEL, QualityPolicy, join_labels, judge, quality_tables
from pipelines.monitoring.quality_report import render_quality_report

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "inference_id": ["r1-0", "r1-1", "r2-0", "r2-0", "r3-0", "r4-0"],
            "customer": ["a", "b", "c", "c", "d", "e"],
            "event_time": [T0, T0 + pd.Timedelta(hours=2), T0, T0, T0 + pd.Timedelta(days=9), T0],
            "prediction": [0.9, 0.2, 0.4, 0.4, 0.5, 0.7],
            "model_version": ["1"] * 6,
            "variant": ["v1"] * 6,
        }
    )


def test_every_prediction_is_labelled_pending_or_unlabelled_and_duplicates_are_counted() -> None:
    labels = pd.DataFrame(
        {
            "customer": ["a", "b", "b", "c", "e"],
            "event_time": [T0, T0, T0, T0 - pd.Timedelta(days=3), T0],
            LABEL: [1.0, 0.0, 0.0, 1.0, None],
            "plan": ["pro", "basic", "basic", "pro", "pro"],
        }
    )
    joined, counts = join_labels(
        _predictions(), labels, "customer", 1, pd.Timedelta(hours=24), T0 + pd.Timedelta(days=5), ["plan"]
    )
    # a: exact match; b: the event two hours before it; c: its event is 3 days old (outside the
    # window), d: its outcome is not observable until day 10, e: a null label
    assert joined.set_index("inference_id")[LABEL].to_dict() == {"r1-0": 1.0, "r1-1": 0.0}
    assert counts.predictions == 5 and counts.duplicate_predictions == 1 and counts.duplicate_labels == 1
    assert (counts.labelled, counts.pending, counts.unlabelled) == (2, 1, 2)
    assert joined["plan"].tolist() == ["pro", "basic"] and joined["day"].tolist() == [T0, T0]


def _live(rows: int, seed: int, noise: dict[str, float]) -> pd.DataFrame:
    """Labelled predictions per plan, each plan's predictions as informative as `noise` lets them."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(list(noise), rows)
    label = rng.random(rows) < 0.3
    signal = label + rng.normal(size=rows) * np.vectorize(noise.get)(plan)
    return pd.DataFrame(
        {
            "prediction": 1 / (1 + np.exp(-signal)),
            LABEL: label.astype(float),
            "model_version": "3",
            "plan": plan,
            "day": T0 + pd.to_timedelta(rng.integers(0, 5, rows), unit="D"),
        }
    )


def test_a_slice_that_fell_is_flagged_and_small_groups_are_not_judged() -> None:
    live = _live(6_000, 1, {"basic": 0.3, "pro": 0.3, "broken": 50.0})
    tables = quality_tables(live, "binary", ["plan"])
    assert len(tables["by_day"]) == 5 and set(tables["plan"]["plan"]) == {"basic", "pro", "broken"}
    evaluation_auc = float(tables["plan"].set_index("plan").loc["pro", "auc"])
    judgement = judge(tables, "binary", {"3": evaluation_auc}, QualityPolicy(max_auc_drop=0.05), ["plan"])
    fallen = {d["group"] for d in judgement.degraded}
    assert judgement.status == "degraded" and "plan=broken" in fallen and "plan=pro" not in fallen
    assert "plan=basic" not in fallen and judgement.judged == 4
    broken = next(d for d in judgement.degraded if d["group"] == "plan=broken")
    assert broken["live"] < 0.6 and broken["drop"] == pytest.approx(evaluation_auc - broken["live"])
    small = judge(tables, "binary", {"3": evaluation_auc}, QualityPolicy(min_rows=10_000), ["plan"])
    assert small.status == "insufficient" and small.judged == 0
    unknown_version = judge(tables, "binary", {"9": 0.9}, QualityPolicy(), ["plan"])
    assert unknown_version.judged == 0


def test_the_report_shows_the_trend_the_fate_of_labels_and_the_slices() -> None:
    live = _live(2_000, 2, {"basic": 0.3, "broken": 50.0})
    tables = quality_tables(live, "binary", ["plan"])
    judgement = judge(tables, "binary", {"3": 0.9}, QualityPolicy(), ["plan"])
    _, counts = join_labels(
        _predictions(),
        pd.DataFrame(columns=["customer", "event_time", LABEL]).astype({"event_time": "datetime64[us, UTC]"}),
        "customer",
        0,
        pd.Timedelta(hours=1),
        T0,
        [],
    )
    page = render_quality_report("Live quality", tables, counts, judgement, "auc", {"3": 0.9})
    assert page.count("data:image/png") == 1 and "plan=broken" in page and "pending" in page
