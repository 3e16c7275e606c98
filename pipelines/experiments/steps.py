"""Reading an experiment out from the lake: its arms' captured predictions joined to their labels."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import pandas as pd

from pipelines.errors import ExperimentError
from pipelines.experiments.readout import Readout, read_out
from pipelines.experiments.report import render_experiment_report
from pipelines.experiments.state import Experiment, read_experiment
from pipelines.monitoring.quality import LABEL, LabelCounts
from pipelines.monitoring.quality_step import labelled_predictions
from pipelines.monitoring.steps import NothingToMonitor
from pipelines.training.steps import PipelineContext


def experiment_readout(ctx: PipelineContext) -> tuple[Experiment, Readout, str]:
    """The model's latest experiment, its readout since it started, and the report's URI."""
    experiment = read_experiment(ctx.platform.artifacts, ctx.model_name)
    if experiment is None:
        raise ExperimentError(f"{ctx.model_name} has no experiment (mlops experiment start)")
    try:
        labelled, counts = labelled_predictions(ctx, since=pd.Timestamp(experiment.started_at))
    except NothingToMonitor:  # no traffic captured yet: nothing to read out, the experiment goes on
        labelled = pd.DataFrame(columns=["variant", "prediction", LABEL, "event_time"])
        counts = LabelCounts(0, 0, 0, 0, 0, 0)
    readout = read_out(
        labelled, *experiment.arms, experiment.metric, experiment.better, effect=experiment.effect
    )
    page = render_experiment_report(experiment, readout, asdict(counts))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    uri = ctx.platform.artifacts.put_bytes(
        f"experiments/{ctx.model_name}/{stamp}/readout.html", page.encode()
    )
    return experiment, readout, uri
