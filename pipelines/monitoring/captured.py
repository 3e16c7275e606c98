"""The captured traffic monitoring reads: the model's capture table, first brought up to date with
what the endpoint captured since the last look (SageMaker's capture files, on AWS)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipelines.ports import CaptureSchema
from pipelines.serving.capture import capture_table

if TYPE_CHECKING:
    from pipelines.training.steps import PipelineContext
    from pipelines.usecase import UseCase

log = logging.getLogger(__name__)


class NothingToMonitor(Exception):
    """No model is live, or no traffic was captured yet."""


def capture_schema(usecase: UseCase) -> CaptureSchema:
    """What a captured request keeps, by the use case: its entity key, event time and features."""
    dataset = usecase.dataset
    return CaptureSchema(
        dataset.entity_key,
        dataset.event_time,
        tuple(usecase.numeric_features()),
        tuple(usecase.categorical_features()),
    )


def captured_traffic(ctx: PipelineContext) -> str:
    """The model's capture table, synced; NothingToMonitor when no traffic was captured yet."""
    synced = ctx.platform.capture.sync(ctx.model_name, capture_schema(ctx.usecase))
    if synced.files:
        log.info(
            "capture: %d files loaded (%d rows), %d records refused",
            synced.files,
            synced.rows,
            synced.rejected,
        )
    table = capture_table(ctx.model_name)
    if ctx.platform.lake.current_snapshot(table) is None:
        raise NothingToMonitor(
            f"no traffic captured for {ctx.model_name} yet: serve it and send requests first"
        )
    return table
