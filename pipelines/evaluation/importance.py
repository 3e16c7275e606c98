"""Global feature importance of a candidate on its test split: permutation importance overall and
per gated slice, with 95 % confidence intervals from repeated shuffles (models/importance.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from models.bundle import ModelBundle
from models.importance import Importance, permutation_importance
from models.metrics import SELECTION_METRIC, selection_score
from pipelines.evaluation.gates import GATED, NULL_SLICE, Evaluation

OVERALL = "overall"
REPEATS = 5
IMPORTANCE_FILE = "importance.json"


def slice_groups(test: pd.DataFrame, evaluation: Evaluation) -> dict[str, np.ndarray]:
    """Row indexes of every group importance is measured on: all rows, and each gated slice."""
    groups = {OVERALL: np.arange(len(test))}
    for column, table in evaluation.slices.items():
        values = test[column].astype(object).where(test[column].notna(), NULL_SLICE).astype(str)
        for value in table.loc[table[GATED], column].astype(str):
            groups[f"{column}={value}"] = np.flatnonzero(values.to_numpy() == value)
    return groups


def sampled_rows(test: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The test rows importance is measured on: all of them, or a seeded sample of `max_rows` (in
    their order). Each feature costs `repeats` scorings of these rows, so the sample is what keeps
    evaluation's cost flat as the test split grows; the gates still judge every row."""
    if max_rows is None or len(test) <= max_rows:
        return test
    chosen = np.sort(np.random.default_rng(seed).choice(len(test), size=max_rows, replace=False))
    return test.iloc[chosen].reset_index(drop=True)


def feature_importance(
    bundle: ModelBundle,
    test: pd.DataFrame,
    label: str,
    evaluation: Evaluation,
    repeats: int = REPEATS,
    seed: int = 0,
    max_rows: int | None = None,
) -> dict[str, Any]:
    """How much the selection metric (AUC, or R²) drops when each feature is shuffled, per group,
    on at most `max_rows` of the test rows (a seeded sample)."""
    test_rows = len(test)
    test = sampled_rows(test, max_rows, seed)
    groups = slice_groups(test, evaluation)
    labels = test[label].to_numpy(dtype=np.float64)

    def metric(predictions: np.ndarray) -> Mapping[str, float]:
        return {
            name: selection_score(bundle.task, labels[rows], predictions[rows])
            for name, rows in groups.items()
        }

    numeric = (
        test[bundle.encoder.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        if bundle.encoder.numeric
        else np.zeros((len(test), 0))
    )
    categorical = {name: test[name].tolist() for name in bundle.encoder.categorical}
    tables = permutation_importance(bundle, numeric, categorical, metric, repeats, seed)
    return {
        "metric": SELECTION_METRIC[bundle.task],
        "method": "permutation",
        "repeats": repeats,
        "test_rows": test_rows,  # importance was measured on "rows" of them
        "rows": {name: len(rows) for name, rows in groups.items()},
        "groups": {name: [asdict(i) for i in table] for name, table in tables.items()},
    }


def overall_importance(payload: Mapping[str, Any]) -> list[Importance]:
    """The overall table of a stored importance payload, largest first."""
    return [Importance(**row) for row in payload["groups"][OVERALL]]
