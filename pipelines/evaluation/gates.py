"""Evaluation: metrics overall and per slice, and the gates a candidate must pass to be approved.

The task decides which metrics and gates apply (binary: AUC, log-loss skill over the base rate;
regression: R^2, RMSE skill over the training mean). A slice's null values form their own slice.
Slices too small to judge are reported and marked as not gated, never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops.settings import GateSettings
from models.metrics import SELECTION_METRIC, task_metrics

NULL_SLICE = "(null)"
GATED = "gated"


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    observed: float
    threshold: float
    detail: str


@dataclass
class Evaluation:
    task: str
    overall: dict[str, float]
    slices: dict[str, pd.DataFrame]
    gates: list[GateResult]
    champion_overall: dict[str, float] | None = None
    champion_version: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def slice_metric(self) -> str:
        return SELECTION_METRIC[self.task]

    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def slice_metrics(
    frame: pd.DataFrame,
    label: str,
    predictions: np.ndarray,
    column: str,
    task: str = "binary",
    baseline: float | None = None,
) -> pd.DataFrame:
    """Metrics for each value of `column` (nulls together as one slice), largest slices first."""
    values = frame[column].astype(object).where(frame[column].notna(), NULL_SLICE).astype(str)
    labels = frame[label].to_numpy()
    rows = []
    for value, index in values.groupby(values, sort=False).indices.items():
        rows.append({column: value, **task_metrics(task, labels[index], predictions[index], baseline)})
    return pd.DataFrame(rows).sort_values("rows", ascending=False).reset_index(drop=True)


def _mark_gated(table: pd.DataFrame, task: str, gates: GateSettings) -> pd.DataFrame:
    """Which slices are big enough to gate; the rest are shown, and shown as not gated."""
    eligible = table["rows"] >= gates.min_slice_rows
    if task == "binary":
        positives = table["rows"] * table["positive_rate"]
        negatives = table["rows"] - positives
        eligible &= (positives >= gates.min_slice_positives) & (negatives >= gates.min_slice_positives)
    eligible &= table[SELECTION_METRIC[task]].notna()
    return table.assign(**{GATED: eligible.to_numpy()})


def _overall_gates(task: str, overall: dict[str, float], gates: GateSettings) -> list[GateResult]:
    def at_least(name: str, metric: str, threshold: float, detail: str) -> GateResult:
        observed = overall[metric]
        return GateResult(name, bool(observed >= threshold), observed, threshold, detail)

    if task == "binary":
        return [
            at_least("min_auc", "auc", gates.min_auc, "test ROC AUC"),
            at_least(
                "min_log_loss_skill",
                "log_loss_skill",
                gates.min_log_loss_skill,
                "1 - test log loss / log loss of always predicting the training base rate",
            ),
        ]
    return [
        at_least("min_r2", "r2", gates.min_r2, "test R^2"),
        at_least(
            "min_rmse_skill",
            "rmse_skill",
            gates.min_rmse_skill,
            "1 - test RMSE / RMSE of always predicting the training mean",
        ),
    ]


def _slice_gate(task: str, column: str, table: pd.DataFrame, gates: GateSettings) -> GateResult | None:
    metric = SELECTION_METRIC[task]
    eligible = table[table[GATED]]
    if eligible.empty:
        return None
    threshold = gates.min_slice_auc if task == "binary" else gates.min_slice_r2
    worst = eligible.iloc[int(eligible[metric].to_numpy().argmin())]
    sizes = f">= {gates.min_slice_rows} rows"
    if task == "binary":
        sizes += f" and >= {gates.min_slice_positives} positives and negatives"
    return GateResult(
        f"min_slice_{metric}[{column}]",
        bool(worst[metric] >= threshold),
        float(worst[metric]),
        threshold,
        f"worst of {len(eligible)} {column} slices with {sizes}: {worst[column]} ({int(worst['rows'])} rows)",
    )


def evaluate(
    frame: pd.DataFrame,
    label: str,
    predictions: np.ndarray,
    gates: GateSettings,
    champion_predictions: np.ndarray | None = None,
    champion_version: int | None = None,
    *,
    task: str = "binary",
    slice_columns: list[str] | tuple[str, ...] = (),
    baseline: float | None = None,
) -> Evaluation:
    """Score a candidate on the test split; with a champion, compare both on the same rows.

    `baseline` is the constant fitted on the training split (base rate or mean) that the skill
    gates compare with. Every slice column must be in `frame`: a missing one is an error, not a
    quietly skipped gate.
    """
    missing = [c for c in slice_columns if c not in frame.columns]
    if missing:
        raise KeyError(f"slice column(s) {missing} are not in the test rows")
    labels = frame[label].to_numpy()
    if baseline is None:
        baseline = float(np.mean(labels)) if len(labels) else None
    overall = task_metrics(task, labels, predictions, baseline)
    slices = {
        c: _mark_gated(slice_metrics(frame, label, predictions, c, task, baseline), task, gates)
        for c in slice_columns
    }
    results = _overall_gates(task, overall, gates)
    notes = []
    for column, table in slices.items():
        gate = _slice_gate(task, column, table, gates)
        if gate is None:
            notes.append(f"no {column} slice is large enough to gate (all {len(table)} are reported)")
        else:
            results.append(gate)
    champion_overall = None
    if champion_predictions is not None:
        metric = SELECTION_METRIC[task]
        champion_overall = task_metrics(task, labels, champion_predictions, baseline)
        drop = gates.max_auc_drop_vs_champion if task == "binary" else gates.max_r2_drop_vs_champion
        floor = champion_overall[metric] - drop
        results.append(
            GateResult(
                "not_worse_than_champion",
                bool(overall[metric] >= floor or math.isnan(champion_overall[metric])),
                overall[metric],
                floor,
                f"champion v{champion_version} {metric} {champion_overall[metric]:.4f} on the same test rows, "
                f"allowed drop {drop}",
            )
        )
    return Evaluation(task, overall, slices, results, champion_overall, champion_version, notes)
