"""The experiment's HTML readout: the running estimate with its interval and the always-valid
p-value over looks, each arm, and the decision."""

from __future__ import annotations

import html
from dataclasses import asdict

import matplotlib.pyplot as plt
import pandas as pd

from pipelines.evaluation.report import figure_png
from pipelines.experiments.readout import Readout
from pipelines.experiments.state import Experiment


def _running(readout: Readout) -> str:
    looks = pd.DataFrame(readout.looks)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].plot(looks["rows"], looks["improvement"], label="improvement")
    axes[0].fill_between(looks["rows"], looks["low"], looks["high"], alpha=0.25, label="95 % interval")
    axes[0].axhline(0, color="grey", linewidth=0.5)
    axes[0].set(
        xlabel="labelled rows", title=f"challenger - champion ({readout.metric}, {readout.better} is better)"
    )
    axes[0].legend(fontsize=7)
    axes[1].plot(looks["rows"], looks["p_value"])
    axes[1].axhline(0.05, color="tab:red", linestyle="--", linewidth=1, label="alpha 0.05")
    axes[1].set(xlabel="labelled rows", ylabel="p", yscale="log", title="always-valid p-value")
    axes[1].legend(fontsize=7)
    return figure_png(fig)


def render_experiment_report(experiment: Experiment, readout: Readout, labels: dict[str, int]) -> str:
    arms = pd.DataFrame(
        [
            {"arm": name, "rows": readout.rows[name], readout.metric: readout.values[name]}
            for name in readout.rows
        ]
    )
    plot = f"<img src='data:image/png;base64,{_running(readout)}'>" if len(readout.looks) > 1 else ""
    settings = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in asdict(experiment).items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Experiment {html.escape(experiment.model_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}} td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>
<h1>Experiment on {html.escape(experiment.model_name)}: v{experiment.challenger} vs champion v{experiment.champion}</h1>
<p><b>Decision: {html.escape(readout.decision)}</b>: {html.escape(readout.reason)}.</p>
<p>Improvement {readout.improvement:.4f} (95 % interval {readout.interval[0]:.4f} to {readout.interval[1]:.4f}),
always-valid p-value {readout.p_value:.4g}; the power calculation plans {readout.planned_rows:,} labelled rows per arm.</p>
{arms.to_html(index=False, border=0, float_format=lambda v: f"{v:.4f}")}{plot}
<h2>Labels</h2>{pd.DataFrame([labels]).to_html(index=False, border=0)}
<h2>Experiment</h2><table>{settings}</table></body></html>"""
