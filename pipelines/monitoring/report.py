"""The drift report: one HTML page with a table and a baseline-vs-current plot per feature."""

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

from pipelines.monitoring.drift import DriftImpact, DriftPolicy, DriftReport

COLOURS = {"ok": "#1a7f37", "warn": "#bf8700", "alert": "#cf222e", "insufficient": "#57606a"}


def _plot(name: str, kind: str, baseline: pd.Series, current: pd.Series) -> str:
    fig, ax = plt.subplots(figsize=(5, 3))
    if kind == "numeric":
        base, now = baseline.dropna().to_numpy(float), current.dropna().to_numpy(float)
        edges = np.unique(np.quantile(np.concatenate([base, now]), np.linspace(0, 1, 31))).tolist()
        ax.hist(base, bins=edges, density=True, alpha=0.5, label="baseline")
        ax.hist(now, bins=edges, density=True, alpha=0.5, label="current")
    else:
        top = baseline.astype(str).value_counts(normalize=True).head(15)
        shares = current.astype(str).value_counts(normalize=True).reindex(top.index, fill_value=0)
        x = np.arange(len(top))
        ax.bar(x - 0.2, top.to_numpy(), 0.4, label="baseline")
        ax.bar(x + 0.2, shares.to_numpy(), 0.4, label="current")
        ax.set_xticks(x, top.index, rotation=60, fontsize=7)
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _impact_section(impacts: list[DriftImpact] | None) -> str:
    if impacts is None:
        return "<h2>Drift that matters</h2><p>This model version has no feature importance (trained before it was measured).</p>"
    top = [i for i in impacts if i.impact > 0][:3]
    named = ", ".join(f"<b>{html.escape(i.feature)}</b> ({i.impact:.3f})" for i in top) or "none"
    rows = "".join(
        f"<tr><td>{html.escape(i.feature)}</td><td>{i.drift:.3f}</td><td>{i.importance:.4f}</td><td>{i.impact:.4f}</td></tr>"
        for i in impacts
    )
    return (
        f"<h2>Drift that matters</h2><p>Most: {named}. Impact = drift relative to its alert threshold x the "
        "feature's share of the model's permutation importance (the evaluation report's), so a large drift "
        "of a feature the model ignores ranks low.</p>"
        "<table><tr><th>feature</th><th>drift / alert threshold</th><th>importance (metric drop)</th>"
        f"<th>impact</th></tr>{rows}</table>"
    )


def render_drift_report(
    title: str,
    report: DriftReport,
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    policy: DriftPolicy,
    impacts: list[DriftImpact] | None = None,
) -> str:
    """The drift page: per-feature drift, the drift that matters to the model, and distributions."""
    rows = "".join(
        f"<tr><td>{html.escape(f.feature)}</td><td>{f.kind}</td><td>{f.score:.4f}</td>"
        f"<td>{'' if f.wasserstein_in_std is None else f'{f.wasserstein_in_std:.3f}'}</td>"
        f"<td style='color:{COLOURS[f.status.value]}'><b>{f.status.value}</b></td><td>{f.baseline_rows:,}</td><td>{f.current_rows:,}</td></tr>"
        for f in report.features
    )
    plots = "".join(
        f"<img src='data:image/png;base64,{_plot(f.feature, f.kind, baseline[f.feature], current[f.feature])}'>"
        for f in report.features
        if f.feature in baseline.columns and f.feature in current.columns
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}} td,th{{padding:3px 10px;border-bottom:1px solid #ddd}}</style></head><body>
<h1>{html.escape(title)}</h1><p>{datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Overall:
<b style='color:{COLOURS[report.status.value]}'>{report.status.value}</b>. Policy: PSI warn {policy.psi_warn}, alert {policy.psi_alert};
Jensen-Shannon warn {policy.js_warn}, alert {policy.js_alert}; effect sizes, not p-values.</p>
<table><tr><th>feature</th><th>kind</th><th>PSI / JS</th><th>Wasserstein (std)</th><th>status</th><th>baseline rows</th><th>current rows</th></tr>{rows}</table>
{_impact_section(impacts)}
<h2>Distributions</h2>{plots}</body></html>"""
