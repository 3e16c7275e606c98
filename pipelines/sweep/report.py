"""The sweep report: one self-contained HTML page (plots embedded as PNG)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipelines.evaluation.report import figure_png
from pipelines.sweep.plan import SweepPlan
from pipelines.sweep.steps import SegmentEvaluation, winner_list

PARAMETER_PREFIX = "param_"
MAX_SEGMENTS_LISTED = 200


def parameter_importance(results: pd.DataFrame) -> dict[str, float]:
    """Per parameter, the share of the variance of the validation score (centred per segment) that its
    value explains (eta squared; ranges are cut into quintiles). 0: no effect seen, 1: all of it."""
    scored = results[np.isfinite(results["score"].astype(float))]
    if scored.empty:
        return {}
    centred = scored["score"] - scored.groupby("segment", dropna=False)["score"].transform("mean")
    total = float((centred**2).sum())
    shares = {}
    for column in [c for c in scored.columns if c.startswith(PARAMETER_PREFIX)]:
        values = scored[column]
        groups = pd.qcut(values, 5, duplicates="drop") if values.nunique() > 5 else values
        means = centred.groupby(groups, observed=True).transform("mean")
        shares[column.removeprefix(PARAMETER_PREFIX)] = float((means**2).sum()) / total if total else 0.0
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def search_curve(results: pd.DataFrame) -> pd.Series:
    """Mean over segments of the best validation score found after each trial (in trial order)."""
    scored = results.assign(score=results["score"].astype(float).fillna(-np.inf)).sort_values("trial")
    best = scored.groupby("segment", dropna=False)["score"].cummax()
    curve = best.groupby(scored["trial"]).mean()
    return curve.replace(-np.inf, np.nan)


def _curve_png(curve: pd.Series, metric: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(curve.index + 1, curve.to_numpy(), marker="." if len(curve) < 50 else None)
    ax.set(
        xlabel="trials per segment",
        ylabel=f"best validation {metric} (mean over segments)",
        title="search curve",
    )
    return figure_png(fig)


def _importance_png(shares: dict[str, float]) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * max(len(shares), 1)))
    names = list(shares)[::-1]
    ax.barh(names, [shares[n] for n in names])
    ax.set(xlabel="share of score variance explained (within segments)", title="parameter importance")
    return figure_png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, na_rep="∅")


def render_sweep_report(
    plan: SweepPlan,
    results: pd.DataFrame,
    best: pd.DataFrame,
    evaluations: Sequence[SegmentEvaluation],
    summary: dict[str, Any],
) -> str:
    """The page: summary, per-segment winners against the global model, parameter importance, curve."""
    metric = "AUC" if plan.task == "binary" else "R²"
    shares = parameter_importance(results)
    tested = {e.segment: e for e in evaluations}
    rows = []
    for row in winner_list(best.head(MAX_SEGMENTS_LISTED)):
        evaluation = tested.get(row.segment)
        rows.append(
            {
                "segment": row.segment,
                "train rows": row.train_rows,
                "trial": row.trial,
                **{k: plan.trials[row.trial][k] for k in sorted(plan.trials[row.trial])},
                f"valid {metric}": row.score,
                f"test {metric} (winner)": evaluation.winner_score if evaluation else np.nan,
                f"test {metric} (global)": evaluation.global_score if evaluation else np.nan,
            }
        )
    facts = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in summary.items())
    fallback = ", ".join(html.escape(str(s)) for s in plan.fallback) or "none"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Sweep {plan.sweep_key}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}</style></head><body>
<h1>Sweep {html.escape(plan.model_name)} ({plan.sweep_key})</h1>
<p>{datetime.now(UTC):%Y-%m-%d %H:%M UTC}: one model per {html.escape(plan.segment_column)}, {len(plan.trials)} trial
settings each; winners by validation {metric}, tested against the global model on each segment's test rows.</p>
<ul>{facts}</ul>
<p>Segments on the global model (too few rows): {fallback}</p>
<h2>Winners per segment</h2>{_table(pd.DataFrame(rows))}
<h2>Parameter importance</h2><img src="data:image/png;base64,{_importance_png(shares)}">
<h2>Search curve</h2><img src="data:image/png;base64,{_curve_png(search_curve(results), metric)}">
</body></html>"""
