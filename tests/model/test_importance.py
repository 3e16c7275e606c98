"""Permutation importance: a feature the network cannot see scores exactly zero, the features it
relies on score above zero with their interval, per group, reproducibly under a seed."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from models.importance import permutation_importance, summarise, t_quantile
from models.metrics import roc_auc


def _inputs(bundle: Any, test: pd.DataFrame) -> tuple[np.ndarray, dict[str, list[object]]]:
    numeric = test[bundle.encoder.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    return numeric, {name: test[name].tolist() for name in bundle.encoder.categorical}


def test_an_unseen_feature_scores_zero_and_the_top_feature_scores_above_zero(
    trained: tuple[Any, pd.DataFrame],
) -> None:
    bundle, test = trained
    blind = copy.deepcopy(bundle)
    with torch.no_grad():  # the first layer ignores the first numeric feature
        blind.network.mlp[0].weight[:, 0] = 0.0
    labels = test["churned_30d"].to_numpy(dtype=np.float64)
    basic = (test["plan"] == "basic").to_numpy()

    def metric(scores: np.ndarray) -> dict[str, float]:
        return {"overall": roc_auc(labels, scores), "plan=basic": roc_auc(labels[basic], scores[basic])}

    tables = permutation_importance(blind, *_inputs(blind, test), metric, repeats=4, seed=3)
    assert set(tables) == {"overall", "plan=basic"}
    overall = {i.feature: i for i in tables["overall"]}
    unseen = overall[bundle.encoder.numeric[0]]
    assert unseen.drop == unseen.low == unseen.high == 0.0 and unseen.repeats == 4
    top = tables["overall"][0]
    assert top.low > 0 and top.drop == max(i.drop for i in tables["overall"])
    again = permutation_importance(blind, *_inputs(blind, test), metric, repeats=4, seed=3)
    assert again == tables


def test_the_interval_is_students_t_around_the_mean() -> None:
    summary = summarise("x", [1.0, 2.0, 3.0])
    half = 4.303 * 1.0 / np.sqrt(3)
    assert (
        summary.drop == 2.0
        and summary.low == pytest.approx(2 - half)
        and summary.high == pytest.approx(2 + half)
    )
    assert t_quantile(4) == 2.776 and t_quantile(200) == 1.96
