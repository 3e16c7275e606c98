from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.metrics import average_precision, classification_metrics, log_loss, roc_auc


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_definition_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.uniform(size=200) + labels * 0.3, 1)  # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores))


def test_auc_edges() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.3, 0.4]))


def test_log_loss_and_average_precision() -> None:
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)


def test_metrics_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        classification_metrics([1, 0], [0.5])


def test_auc_and_log_loss_of_float32_scores_equal_their_float64_values() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 50_000).astype(np.float32)
    scores = np.round(rng.uniform(size=50_000) * 0.7 + labels * 0.3, 3).astype(np.float32)
    assert roc_auc(labels, scores) == roc_auc(labels.astype(np.float64), scores.astype(np.float64))
    assert log_loss(labels, scores) == log_loss(labels.astype(np.float64), scores.astype(np.float64))


def test_auc_holds_narrow_arrays_not_float64_ranks_per_row() -> None:
    """Training scores every validation row each epoch: 7.5 M rows cost 0.31 GB here, 0.62 GB with
    a float64 rank per row (83 bytes a row), on top of the tensors it trains on."""
    import tracemalloc

    rows = 1_000_000
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, rows).astype(np.float32)
    scores = rng.uniform(size=rows).astype(np.float32)  # every score distinct: a run per row
    tracemalloc.start()
    try:
        roc_auc(labels, scores)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * rows
