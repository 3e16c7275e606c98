"""The evaluation report: one self-contained HTML page (plots embedded as PNG)."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipelines.evaluation.gates import Evaluation

MAX_SLICES_PLOTTED = 25


def _png(fig: Figure) -> str:
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
    return _png(fig)


def _calibration_plot(labels: np.ndarray, scores: np.ndarray) -> str:
    bins = np.quantile(scores, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, scores, side="right") - 1, 0, 9)
    predicted = [scores[which == b].mean() for b in range(10) if (which == b).any()]
    observed = [labels[which == b].mean() for b in range(10) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(predicted, observed, marker="o")
    top = max([*predicted, *observed, 0.01])
    ax.plot([0, top], [0, top], color="grey", linewidth=0.5)
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", title="Calibration (deciles)")
    return _png(fig)


def _slice_plot(table: pd.DataFrame, column: str, threshold: float) -> str:
    shown = table.head(MAX_SLICES_PLOTTED)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(shown[column].astype(str), shown["auc"], color="tab:blue")
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"gate {threshold}")
    ax.set(ylabel="ROC AUC", title=f"AUC per {column} (largest {len(shown)} slices)", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend()
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="data")


def render_report(
    title: str,
    evaluation: Evaluation,
    labels: np.ndarray,
    scores: np.ndarray,
    champion_scores: np.ndarray | None,
    min_slice_auc: float,
    lineage: dict[str, object],
) -> str:
    """The evaluation report as HTML text."""
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
    images = [_roc_plot(labels, scores, champion_scores), _calibration_plot(labels, scores)]
    slice_sections = "".join(
        f"<h3>By {html.escape(col)}</h3><img src='data:image/png;base64,{_slice_plot(tbl, col, min_slice_auc)}'>"
        f"<details><summary>table ({len(tbl)} slices)</summary>{_table(tbl)}</details>"
        for col, tbl in evaluation.slices.items()
    )
    lineage_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in lineage.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table.data{{border-collapse:collapse;font-size:13px}} table.data td,table.data th{{padding:3px 8px;border-bottom:1px solid #ddd}}
.verdict{{font-weight:bold;color:{"#1a7f37" if evaluation.passed else "#cf222e"}}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Gates: <span class="verdict">{verdict}</span></p>
<h2>Gates</h2>{_table(gates)}
<h2>Overall (test split)</h2>{_table(overall)}
{"".join(f"<img src='data:image/png;base64,{img}'>" for img in images)}
<h2>Slices</h2>{slice_sections}
<h2>Lineage</h2><table class="data">{lineage_rows}</table>
</body></html>"""
