"""The quality flow's step: join the live model's captured predictions to the labels the lake has
received since, measure, judge against each version's evaluation, publish and report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from models.metrics import SELECTION_METRIC
from pipelines.lake.ingest import curated_table
from pipelines.monitoring.captured import NothingToMonitor, captured_traffic
from pipelines.monitoring.quality import (
    LABEL,
    OVERALL,
    LabelCounts,
    QualityPolicy,
    join_labels,
    judge,
    quality_tables,
)
from pipelines.monitoring.quality_report import render_quality_report
from pipelines.ports import MetricDatum, RowFilter
from pipelines.serving.capture import EVENT_TIME, INFERENCE_ID, MODEL_VERSION
from pipelines.training.steps import PipelineContext

NEVER = pd.Timestamp("1970-01-01", tz="UTC")
CAPTURED = [INFERENCE_ID, EVENT_TIME, "prediction", MODEL_VERSION, "variant"]


@dataclass(frozen=True)
class QualityResult:
    model_name: str
    status: str  # ok | degraded | insufficient
    metric: str
    degraded: list[dict[str, Any]]
    labels: dict[str, int]
    live: dict[str, float]  # version -> live metric over the window
    report_uri: str
    versions: list[str] = field(default_factory=list)


def labelled_predictions(
    ctx: PipelineContext, since: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, LabelCounts]:
    """The model's captured predictions made in the quality window (or since `since`), joined to
    the labels the lake has received, and the count of every prediction's fate."""
    settings, dataset = ctx.settings.pipeline.quality, ctx.usecase.dataset
    lake, table = ctx.platform.lake, captured_traffic(ctx)
    if INFERENCE_ID not in lake.schema(table).names:
        raise NothingToMonitor(
            f"{table} holds no inference ids yet: traffic captured from now on will have them"
        )
    # The window is of predictions made, whatever time they are about: its start comes from one
    # column, and only the window's rows are read (the table holds all traffic ever captured).
    if since is None:
        newest = pd.Timestamp(pc.max(lake.read(table, columns=["captured_at"]).column(0)).as_py())
        since = newest - pd.Timedelta(days=settings.window_days)
    window = RowFilter(at_least={"captured_at": since.to_pydatetime()})
    captured = lake.read(
        table, columns=[dataset.entity_key, *CAPTURED, "captured_at"], where=window
    ).to_pandas()
    captured = captured[captured["captured_at"] >= since]
    match_window = pd.Timedelta(hours=settings.match_window_hours)
    curated = curated_table(dataset)
    if lake.current_snapshot(curated) is None:  # no label has arrived at all: every prediction waits
        no_labels = pd.DataFrame(
            {
                dataset.entity_key: pd.Series([], dtype=str),
                "event_time": pd.Series([], dtype="datetime64[us, UTC]"),
                LABEL: pd.Series([], dtype=float),
                **{column: pd.Series([], dtype=object) for column in ctx.slice_columns},
            }
        )
        return join_labels(captured, no_labels, dataset.entity_key, 0, match_window, NEVER, ctx.slice_columns)
    observed_until = lake.read(curated, columns=[dataset.event_time]).column(0).to_pandas().max()
    keys = tuple(str(k) for k in captured[dataset.entity_key].dropna().unique())
    labels = lake.read(
        curated,
        columns=list(
            dict.fromkeys([dataset.entity_key, dataset.event_time, dataset.label, *ctx.slice_columns])
        ),
        where=RowFilter(
            any_of={dataset.entity_key: keys},
            at_least={dataset.event_time: (captured[EVENT_TIME].min() - match_window).to_pydatetime()},
        ),
    ).to_pandas()
    labels = labels.rename(columns={dataset.label: LABEL, dataset.event_time: "event_time"})
    return join_labels(
        captured,
        labels,
        dataset.entity_key,
        ctx.usecase.task.label_horizon_days or 0,
        match_window,
        observed_until,
        ctx.slice_columns,
    )


def quality_step(ctx: PipelineContext) -> QualityResult:
    """Live quality of the model's captured predictions over the configured window."""
    settings, model = ctx.settings.pipeline.quality, ctx.model_name
    labelled, counts = labelled_predictions(ctx)
    task, metric = ctx.usecase.task.type, SELECTION_METRIC[ctx.usecase.task.type]
    tables = quality_tables(labelled, task, ctx.slice_columns)
    versions = sorted({str(v) for v in labelled.get(MODEL_VERSION, pd.Series(dtype=str)) if str(v).isdigit()})
    reference = {
        v: float(ctx.platform.registry.get(model, int(v)).metrics.get(metric, float("nan"))) for v in versions
    }
    policy = QualityPolicy(
        settings.min_rows, settings.min_positives, settings.max_auc_drop, settings.max_r2_drop
    )
    judgement = judge(tables, task, reference, policy, ctx.slice_columns)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    page = render_quality_report(f"Live quality of {model}", tables, counts, judgement, metric, reference)
    report_uri = ctx.platform.artifacts.put_bytes(f"monitoring/{model}/{stamp}/quality.html", page.encode())
    live = (
        {str(r["model_version"]): float(r[metric]) for r in tables[OVERALL].to_dict("records")}
        if not tables[OVERALL].empty
        else {}
    )
    _publish(ctx, model, metric, live, tables, counts.__dict__)
    return QualityResult(
        model, judgement.status, metric, judgement.degraded, asdict(counts), live, report_uri, versions
    )


def _publish(
    ctx: PipelineContext,
    model: str,
    metric: str,
    live: dict[str, float],
    tables: dict[str, pd.DataFrame],
    counts: dict[str, int],
) -> None:
    dims = {"environment": ctx.platform.environment, "model": model}
    data = [MetricDatum(f"labels_{name}", float(value), dims, "Count") for name, value in counts.items()]
    data += [
        MetricDatum(f"live_{metric}", value, {**dims, "version": version})
        for version, value in live.items()
        if value == value
    ]
    for column in ctx.slice_columns:
        for row in tables[column].to_dict("records") if not tables[column].empty else []:
            if row[metric] == row[metric]:
                slice_dims = {**dims, "version": str(row[MODEL_VERSION]), "slice": f"{column}={row[column]}"}
                data.append(MetricDatum(f"live_{metric}", float(row[metric]), slice_dims))
    ctx.platform.metrics.put(data)
