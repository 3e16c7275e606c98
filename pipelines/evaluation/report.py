"""The evaluation report: one self-contained HTML page (plots embedded as PNG)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipelines.evaluation.gates import GATED, Evaluation

MAX_SLICES_PLOTTED = 25
MAX_FEATURES_PLOTTED = 30


def figure_png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    hits = labels[order]
    tpr = np.concatenate(([0.0], np.cumsum(hits) / max(hits.sum(), 1)))
    fpr = np.concatenate(([0.0], np.cumsum(1 - hits) / max((1 - hits).sum(), 1)))
    return fpr, tpr


def _roc_plot(labels: np.ndarray, scores: np.ndarray, champion: np.ndarray | None) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(*roc_points(labels, scores), label="candidate")
    if champion is not None:
        ax.plot(*roc_points(labels, champion), label="champion", linestyle="--")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
    ax.legend()
    return figure_png(fig)


def _calibration_plot(labels: np.ndarray, scores: np.ndarray, label: str) -> str:
    bins = np.quantile(scores, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, scores, side="right") - 1, 0, 9)
    predicted = [scores[which == b].mean() for b in range(10) if (which == b).any()]
    observed = [labels[which == b].mean() for b in range(10) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(predicted, observed, marker="o")
    top = max([*predicted, *observed, 0.01])
    ax.plot([0, top], [0, top], color="grey", linewidth=0.5)
    ax.set(
        xlabel="mean predicted probability", ylabel=f"observed rate of {label}", title="Calibration (deciles)"
    )
    return figure_png(fig)


def _predicted_vs_actual_plot(labels: np.ndarray, predictions: np.ndarray, label: str) -> str:
    shown = np.random.default_rng(0).permutation(len(labels))[:5_000]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(predictions[shown], labels[shown], s=4, alpha=0.3)
    low = float(min(labels.min(initial=0), predictions.min(initial=0)))
    high = float(max(labels.max(initial=1), predictions.max(initial=1)))
    ax.plot([low, high], [low, high], color="grey", linewidth=0.5)
    ax.set(xlabel=f"predicted {label}", ylabel=f"actual {label}", title="Predicted vs actual (test split)")
    return figure_png(fig)


def _residual_plot(labels: np.ndarray, predictions: np.ndarray, label: str) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist(labels - predictions, bins=50, color="tab:blue")
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.set(xlabel=f"actual - predicted {label}", ylabel="rows", title="Residuals (test split)")
    return figure_png(fig)


def _slice_plot(table: pd.DataFrame, column: str, metric: str, threshold: float) -> str:
    """Bars per slice; slices large enough to gate are solid, the others hatched and grey."""
    shown = table.head(MAX_SLICES_PLOTTED)
    gated = shown[GATED].to_numpy(dtype=bool)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    names = shown[column].astype(str).to_numpy()
    values = shown[metric].fillna(0).to_numpy()
    ax.bar(names[gated], values[gated], color="tab:blue", label="gated")
    ax.bar(
        names[~gated],
        values[~gated],
        color="lightgrey",
        hatch="//",
        edgecolor="grey",
        label="too small to gate",
    )
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"gate {threshold}")
    bottom = min(0.0, float(values.min(initial=0)))
    ax.set(ylabel=metric, title=f"{metric} per {column} (largest {len(shown)} slices)", ylim=(bottom, 1))
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend()
    return figure_png(fig)


def _importance_plot(rows: list[Mapping[str, Any]], metric: str) -> str:
    """Horizontal bars of the overall importance with their 95 % intervals, largest on top."""
    shown = rows[:MAX_FEATURES_PLOTTED][::-1]
    drops = np.array([r["drop"] for r in shown])
    errors = np.array([[r["drop"] - r["low"] for r in shown], [r["high"] - r["drop"] for r in shown]])
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.2))
    ax.barh([r["feature"] for r in shown], drops, xerr=errors, color="tab:blue", ecolor="black", capsize=2)
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.set(
        xlabel=f"drop of {metric} when shuffled (95 % interval)", title="Permutation importance (test split)"
    )
    ax.tick_params(axis="y", labelsize=8)
    return figure_png(fig)


def _importance_section(importance: Mapping[str, Any]) -> str:
    groups: dict[str, list[Mapping[str, Any]]] = importance["groups"]
    metric, repeats = importance["metric"], importance["repeats"]
    overall = groups["overall"]
    table = pd.DataFrame(
        [
            {"feature": r["feature"], f"{metric} drop": r["drop"], "95% low": r["low"], "95% high": r["high"]}
            for r in overall
        ]
    )
    per_slice = pd.DataFrame(
        [
            {
                "slice": name,
                "rows": importance["rows"][name],
                **{f"#{rank + 1}": f"{r['feature']} ({r['drop']:.3f})" for rank, r in enumerate(rows[:3])},
            }
            for name, rows in groups.items()
            if name != "overall"
        ]
    )
    slices = (
        f"<h3>Most important features per slice</h3>{_table(per_slice)}"
        if not per_slice.empty
        else "<p>No slice is large enough to measure importance on.</p>"
    )
    measured, test_rows = importance["rows"]["overall"], importance.get("test_rows")
    sample = (
        f" Measured on a random sample of {measured:,} of the {test_rows:,} test rows."
        if test_rows and test_rows > measured
        else ""
    )
    return (
        f"<h2>Feature importance</h2><p>Drop of {html.escape(metric)} on the test split when one feature's "
        f"values are shuffled across rows, mean of {repeats} shuffles with its 95 % interval.{sample}</p>"
        f"<img src='data:image/png;base64,{_importance_plot(overall, metric)}'>"
        f"<details><summary>table ({len(overall)} features)</summary>{_table(table)}</details>{slices}"
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="data")


def render_report(
    title: str,
    evaluation: Evaluation,
    labels: np.ndarray,
    scores: np.ndarray,
    champion_scores: np.ndarray | None,
    slice_threshold: float,
    lineage: dict[str, object],
    label: str = "label",
    importance: Mapping[str, Any] | None = None,
) -> str:
    """The evaluation report as HTML text (plots by task: ROC and calibration, or fit and residuals;
    feature importance when given, from pipelines/evaluation/importance.py)."""
    gates = pd.DataFrame([g.__dict__ for g in evaluation.gates])
    verdict = "PASSED" if evaluation.passed else "FAILED"
    overall = pd.DataFrame([{"model": "candidate", **evaluation.overall}])
    if evaluation.champion_overall is not None:
        overall = pd.concat(
            [
                overall,
                pd.DataFrame(
                    [{"model": f"champion v{evaluation.champion_version}", **evaluation.champion_overall}]
                ),
            ]
        )
    if evaluation.task == "binary":
        images = [_roc_plot(labels, scores, champion_scores), _calibration_plot(labels, scores, label)]
    else:
        images = [_predicted_vs_actual_plot(labels, scores, label), _residual_plot(labels, scores, label)]
    metric = evaluation.slice_metric
    slice_sections = "".join(
        f"<h3>By {html.escape(col)}</h3>"
        f"<img src='data:image/png;base64,{_slice_plot(tbl, col, metric, slice_threshold)}'>"
        f"<details><summary>table ({len(tbl)} slices, {int(tbl[GATED].sum())} gated)</summary>{_table(tbl)}</details>"
        for col, tbl in evaluation.slices.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in evaluation.notes)
    lineage_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in lineage.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table.data{{border-collapse:collapse;font-size:13px}} table.data td,table.data th{{padding:3px 8px;border-bottom:1px solid #ddd}}
.verdict{{font-weight:bold;color:{"#1a7f37" if evaluation.passed else "#cf222e"}}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Task: {html.escape(evaluation.task)}. Gates: <span class="verdict">{verdict}</span></p>
<h2>Gates</h2>{_table(gates)}{f"<ul>{notes}</ul>" if notes else ""}
<h2>Overall (test split)</h2>{_table(overall)}
{"".join(f"<img src='data:image/png;base64,{img}'>" for img in images)}
<h2>Slices</h2>{slice_sections}
{_importance_section(importance) if importance else ""}
<h2>Lineage</h2><table class="data">{lineage_rows}</table>
</body></html>"""
