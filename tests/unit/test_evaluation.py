from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.settings import GateSettings
from pipelines.evaluation.gates import evaluate
from pipelines.evaluation.report import render_report


def _frame(rows: int = 4_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, rows),
            "country": rng.choice(["DE", "FR", "ES", "PT"], rows),
            "plan": rng.choice(["basic", "premium"], rows),
        }
    )
    good = np.clip(frame["y"] * 0.4 + rng.uniform(0, 0.6, rows), 0.01, 0.99)
    return frame, good.to_numpy()


GATES = GateSettings(
    min_auc=0.7, max_log_loss=0.7, min_slice_auc=0.6, min_slice_rows=100, max_auc_drop_vs_champion=0.01
)


def test_good_model_passes_every_gate() -> None:
    frame, scores = _frame()
    result = evaluate(frame, "y", scores, GATES)
    assert result.passed
    assert {g.name for g in result.gates} == {
        "min_auc",
        "max_log_loss",
        "min_slice_auc[country]",
        "min_slice_auc[plan]",
    }
    assert set(result.slices["country"]["country"]) == {"DE", "FR", "ES", "PT"}


def test_absolute_gate_fails_a_weak_model() -> None:
    frame, _ = _frame()
    noise = np.random.default_rng(1).uniform(0.01, 0.99, len(frame))
    result = evaluate(frame, "y", noise, GATES)
    assert not result.passed
    assert "min_auc" in {g.name for g in result.failed()}


def test_slice_gate_catches_a_model_that_fails_one_slice() -> None:
    frame, scores = _frame()
    bad = scores.copy()
    in_pt = (frame["country"] == "PT").to_numpy()
    bad[in_pt] = 1 - bad[in_pt]  # inverted ranking for one country only
    failed = {g.name for g in evaluate(frame, "y", bad, GATES).failed()}
    assert "min_slice_auc[country]" in failed


def test_relative_gate_compares_with_the_champion_on_the_same_rows() -> None:
    frame, champion = _frame()
    worse = 0.5 * champion + 0.5 * np.random.default_rng(2).uniform(0.01, 0.99, len(frame))
    result = evaluate(frame, "y", worse, GATES, champion_scores=champion, champion_version=3)
    gate = next(g for g in result.gates if g.name == "not_worse_than_champion")
    assert not gate.passed and "champion v3" in gate.detail
    assert evaluate(frame, "y", champion, GATES, champion_scores=champion, champion_version=3).passed


def test_report_is_html_with_plots_and_lineage() -> None:
    frame, scores = _frame()
    result = evaluate(frame, "y", scores, GATES)
    page = render_report("title", result, frame["y"].to_numpy(), scores, None, 0.6, {"git_commit": "abc123"})
    assert page.startswith("<!doctype html>")
    assert page.count("data:image/png;base64,") == 4  # ROC, calibration, two slice charts
    assert "abc123" in page and "PASSED" in page
