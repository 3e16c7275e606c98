"""Evaluation: metrics overall and per slice, and the gates a candidate must pass to be approved."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops.settings import GateSettings
from models.metrics import classification_metrics


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    observed: float
    threshold: float
    detail: str


@dataclass
class Evaluation:
    overall: dict[str, float]
    slices: dict[str, pd.DataFrame]
    gates: list[GateResult]
    champion_overall: dict[str, float] | None = None
    champion_version: int | None = None
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def slice_metrics(frame: pd.DataFrame, label: str, scores: np.ndarray, column: str) -> pd.DataFrame:
    """Metrics for each value of `column`, largest slices first."""
    rows = []
    for value, index in frame.groupby(column, sort=False, observed=True).indices.items():
        metrics = classification_metrics(frame[label].to_numpy()[index], scores[index])
        rows.append({column: value, **metrics})
    return pd.DataFrame(rows).sort_values("rows", ascending=False).reset_index(drop=True)


def evaluate(
    frame: pd.DataFrame,
    label: str,
    scores: np.ndarray,
    gates: GateSettings,
    champion_scores: np.ndarray | None = None,
    champion_version: int | None = None,
) -> Evaluation:
    """Score a candidate on the test split; with a champion, compare both on the same rows."""
    labels = frame[label].to_numpy()
    overall = classification_metrics(labels, scores)
    slices = {c: slice_metrics(frame, label, scores, c) for c in gates.slice_columns if c in frame.columns}
    results = [
        GateResult("min_auc", overall["auc"] >= gates.min_auc, overall["auc"], gates.min_auc, "test ROC AUC"),
        GateResult(
            "max_log_loss",
            overall["log_loss"] <= gates.max_log_loss,
            overall["log_loss"],
            gates.max_log_loss,
            "test log loss",
        ),
    ]
    for column, table in slices.items():
        positives = table["rows"] * table["positive_rate"]
        eligible = table[
            (table["rows"] >= gates.min_slice_rows)
            & (positives >= gates.min_slice_positives)
            & table["auc"].notna()
        ]
        if eligible.empty:
            continue
        worst = eligible.iloc[int(eligible["auc"].to_numpy().argmin())]
        results.append(
            GateResult(
                f"min_slice_auc[{column}]",
                bool(worst["auc"] >= gates.min_slice_auc),
                float(worst["auc"]),
                gates.min_slice_auc,
                f"worst {column} slice with >= {gates.min_slice_rows} rows and >= {gates.min_slice_positives} positives: "
                f"{worst[column]} ({int(worst['rows'])} rows)",
            )
        )
    champion_overall = None
    if champion_scores is not None:
        champion_overall = classification_metrics(labels, champion_scores)
        floor = champion_overall["auc"] - gates.max_auc_drop_vs_champion
        results.append(
            GateResult(
                "not_worse_than_champion",
                overall["auc"] >= floor or math.isnan(champion_overall["auc"]),
                overall["auc"],
                floor,
                f"champion v{champion_version} AUC {champion_overall['auc']:.4f} on the same test rows, "
                f"allowed drop {gates.max_auc_drop_vs_champion}",
            )
        )
    return Evaluation(overall, slices, results, champion_overall, champion_version)
