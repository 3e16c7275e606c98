"""The live-quality page: the metric's trend per model version, the labels' fate, the slices."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import matplotlib.pyplot as plt
import pandas as pd

from pipelines.evaluation.report import figure_png
from pipelines.monitoring.quality import DAY, OVERALL, LabelCounts, QualityJudgement

COLOURS = {"ok": "#1a7f37", "degraded": "#cf222e", "insufficient": "#57606a"}


def _trend(by_day: pd.DataFrame, metric: str, reference: dict[str, float]) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for version, rows in by_day.groupby("model_version", sort=True):
        line = axes[0].plot(rows[DAY], rows[metric], marker="o", markersize=3, label=f"v{version}")[0]
        if str(version) in reference:
            axes[0].axhline(reference[str(version)], color=line.get_color(), linestyle=":", linewidth=1)
        second = "positive_rate" if "positive_rate" in rows else "mean_residual"
        axes[1].plot(rows[DAY], rows[second], label=f"v{version} observed")
        if "mean_prediction" in rows:
            axes[1].plot(rows[DAY], rows["mean_prediction"], linestyle="--", label=f"v{version} predicted")
    axes[0].set(title=f"live {metric} per day (dotted: at evaluation)", ylabel=metric)
    axes[1].set(
        title="positive rate: observed vs predicted" if "positive_rate" in by_day else "mean residual"
    )
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.legend(fontsize=7)
    return figure_png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)


def render_quality_report(
    title: str,
    tables: dict[str, pd.DataFrame],
    counts: LabelCounts,
    judgement: QualityJudgement,
    metric: str,
    reference: dict[str, float],
) -> str:
    """The page as HTML text."""
    fate = pd.DataFrame([counts.__dict__])
    degraded = pd.DataFrame(judgement.degraded)
    trend = (
        f"<img src='data:image/png;base64,{_trend(tables['by_day'], metric, reference)}'>"
        if not tables["by_day"].empty
        else "<p>No labelled prediction yet.</p>"
    )
    slices = "".join(
        f"<h3>By {html.escape(name)}</h3>{_table(table)}"
        for name, table in tables.items()
        if name not in ("by_day", OVERALL) and not table.empty
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}} td,th{{padding:3px 10px;border-bottom:1px solid #ddd}}</style></head><body>
<h1>{html.escape(title)}</h1><p>{datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Status:
<b style='color:{COLOURS[judgement.status]}'>{judgement.status}</b> ({judgement.judged} groups judged).</p>
<h2>Degraded</h2>{_table(degraded) if not degraded.empty else "<p>Nothing fell beyond the allowed drop.</p>"}
<h2>Labels</h2><p>Every captured prediction of the window is labelled, pending (its outcome is not
observable yet) or unlabelled (no event of its entity in the match window, or a null label);
duplicates are dropped and counted.</p>{_table(fate)}
<h2>Trend</h2>{trend}
<h2>Overall per model version</h2>{_table(tables[OVERALL]) if not tables[OVERALL].empty else "<p>none</p>"}
<h2>Slices</h2>{slices or "<p>none</p>"}
<h2>Per day</h2><details><summary>table</summary>{_table(tables["by_day"]) if not tables["by_day"].empty else ""}</details>
</body></html>"""
