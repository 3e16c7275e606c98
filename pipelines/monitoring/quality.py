"""Live model quality: captured predictions joined to the labels that arrive later, measured per day,
per model version and per slice, and judged against what the version scored at its evaluation.

A prediction's label is the label of its entity's latest curated event at or before the
prediction's event time and no older than the match window: with an event time sent in the request
that is the very event scored, otherwise the last event before the request. A label is only looked
for once it is observable: when the curated data reaches `label_horizon_days` past the prediction.
Every prediction is counted in exactly one of: labelled, pending (not observable yet), unlabelled
(observable, but no event in the window or a null label); duplicates of a captured row (the same
inference id twice) and extra label rows for one event are dropped and counted, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import SELECTION_METRIC, log_loss, r2, roc_auc
from pipelines.evaluation.gates import NULL_SLICE

LABEL = "label"
DAY = "day"
OVERALL = "overall"


@dataclass(frozen=True)
class LabelCounts:
    predictions: int  # distinct captured predictions in the window
    labelled: int
    pending: int
    unlabelled: int
    duplicate_predictions: int
    duplicate_labels: int

    def __post_init__(self) -> None:
        assert self.labelled + self.pending + self.unlabelled == self.predictions


@dataclass(frozen=True)
class QualityPolicy:
    min_rows: int = 200
    min_positives: int = 20  # of each class, for an AUC to be judged (binary)
    max_auc_drop: float = 0.05
    max_r2_drop: float = 0.10


@dataclass
class QualityJudgement:
    status: str  # ok | degraded | insufficient
    degraded: list[dict[str, object]] = field(default_factory=list)  # the groups that fell, and by how much
    judged: int = 0


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    entity_key: str,
    horizon_days: float,
    match_window: pd.Timedelta,
    observed_until: pd.Timestamp,
    slice_columns: Sequence[str] = (),
) -> tuple[pd.DataFrame, LabelCounts]:
    """The labelled predictions (prediction, label, model_version, variant, day, slices) and the
    count of every prediction's fate. `predictions` has inference_id, entity key, event_time,
    prediction, model_version, variant; `labels` has the entity key, event_time, `label` and the
    slice columns (the curated event's)."""
    unique = predictions.drop_duplicates("inference_id", keep="first")
    duplicate_predictions = len(predictions) - len(unique)
    matured = unique["event_time"] + pd.Timedelta(days=horizon_days) <= observed_until
    ready = unique[matured].dropna(subset=[entity_key]).copy()
    ready[entity_key] = ready[entity_key].astype(str)
    events = labels.drop_duplicates([entity_key, "event_time"], keep="last")
    duplicate_labels = len(labels) - len(events)
    events = events.assign(**{entity_key: events[entity_key].astype(str), "label_time": events["event_time"]})
    joined = pd.merge_asof(
        ready.sort_values("event_time", kind="stable"),
        events.drop(columns="event_time").sort_values("label_time", kind="stable"),
        left_on="event_time",
        right_on="label_time",
        by=entity_key,
        direction="backward",
        tolerance=match_window,
        suffixes=("", "_label"),
    )
    labelled = joined[joined[LABEL].notna()].copy()
    labelled[DAY] = labelled["event_time"].dt.floor("D")
    for column in slice_columns:
        source = f"{column}_label" if f"{column}_label" in labelled.columns else column
        values = labelled[source].astype(object)
        labelled[column] = values.where(values.notna(), NULL_SLICE).astype(str)
    counts = LabelCounts(
        predictions=len(unique),
        labelled=len(labelled),
        pending=int((~matured).sum()),
        unlabelled=int(matured.sum()) - len(labelled),
        duplicate_predictions=duplicate_predictions,
        duplicate_labels=duplicate_labels,
    )
    return labelled.reset_index(drop=True), counts


def group_metrics(task: str, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """What live quality reports for one group: AUC, log loss, calibration gap and positive rate, or
    R², RMSE and mean residual."""
    rows = float(len(labels))
    if task == "binary":
        both = 0 < labels.sum() < len(labels)
        return {
            "rows": rows,
            "positives": float(labels.sum()),
            "auc": roc_auc(labels, predictions) if both else float("nan"),
            "log_loss": log_loss(labels, np.clip(predictions, 1e-7, 1 - 1e-7))
            if len(labels)
            else float("nan"),
            "positive_rate": float(labels.mean()) if len(labels) else float("nan"),
            "mean_prediction": float(predictions.mean()) if len(labels) else float("nan"),
            "calibration_gap": float(predictions.mean() - labels.mean()) if len(labels) else float("nan"),
        }
    residual = labels - predictions
    return {
        "rows": rows,
        "r2": r2(labels, predictions) if len(labels) > 1 else float("nan"),
        "rmse": float(np.sqrt(np.mean(residual**2))) if len(labels) else float("nan"),
        "mean_residual": float(residual.mean()) if len(labels) else float("nan"),
    }


def quality_tables(
    labelled: pd.DataFrame, task: str, slice_columns: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Metrics per day and model version (the trend), and per model version and slice value."""

    def table(keys: list[str]) -> pd.DataFrame:
        rows = []
        for key, group in labelled.groupby(keys, sort=True):
            values = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            scored = group_metrics(
                task, group[LABEL].to_numpy(np.float64), group["prediction"].to_numpy(np.float64)
            )
            rows.append({**values, **scored})
        return pd.DataFrame(rows)

    tables = {"by_day": table([DAY, "model_version"]), OVERALL: table(["model_version"])}
    for column in slice_columns:
        tables[column] = table(["model_version", column])
    return tables


def judge(
    tables: dict[str, pd.DataFrame],
    task: str,
    reference: dict[str, float],
    policy: QualityPolicy,
    slice_columns: Sequence[str] = (),
) -> QualityJudgement:
    """Each version overall and in each slice big enough to judge, against the metric the version
    scored on its test split (`reference`: version -> AUC or R²)."""
    metric = SELECTION_METRIC[task]
    allowed = policy.max_auc_drop if task == "binary" else policy.max_r2_drop
    judgement = QualityJudgement("insufficient")
    for name in [OVERALL, *slice_columns]:
        for row in tables[name].to_dict("records") if not tables[name].empty else []:
            version = str(row["model_version"])
            if version not in reference or not _enough(row, task, policy) or row[metric] != row[metric]:
                continue
            judgement.judged += 1
            drop = reference[version] - float(row[metric])
            if drop > allowed:
                group = OVERALL if name == OVERALL else f"{name}={row[name]}"
                judgement.degraded.append(
                    {
                        "model_version": version,
                        "group": group,
                        "metric": metric,
                        "live": float(row[metric]),
                        "at_evaluation": reference[version],
                        "drop": drop,
                        "rows": int(row["rows"]),
                    }
                )
    if judgement.judged:
        judgement.status = "degraded" if judgement.degraded else "ok"
    return judgement


def _enough(row: Mapping[Any, Any], task: str, policy: QualityPolicy) -> bool:
    rows = float(row["rows"])
    if rows < policy.min_rows:
        return False
    if task != "binary":
        return True
    positives = float(row["positives"])
    return min(positives, rows - positives) >= policy.min_positives
