"""Metrics in CloudWatch: PutMetricData in batches, one namespace per environment."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.adapters.aws.session import client
from pipelines.ports import MetricDatum

BATCH = 1000  # PutMetricData's limit of data points per call


class CloudWatchMetrics:
    """MetricsPort on CloudWatch custom metrics."""

    def __init__(self, namespace: str, cloudwatch: Any | None = None) -> None:
        self.namespace = namespace
        self.cloudwatch = cloudwatch or client("cloudwatch")

    def put(self, data: Sequence[MetricDatum]) -> int:
        now = datetime.now(UTC)
        wire = [
            {
                "MetricName": d.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(d.dimensions.items())],
                "Value": float(d.value),
                "Unit": d.unit,
                "Timestamp": d.timestamp or now,
            }
            for d in data
        ]
        for start in range(0, len(wire), BATCH):
            self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=wire[start : start + BATCH])
        return len(wire)

    def query(
        self, name: str, dimensions: dict[str, str] | None = None, days: int = 14
    ) -> Iterator[MetricDatum]:
        """Data points (one-minute averages) of every series of `name` whose dimensions include `dimensions`."""
        wanted = [{"Name": k, "Value": v} for k, v in sorted((dimensions or {}).items())]
        end = datetime.now(UTC) + timedelta(minutes=1)
        points: list[MetricDatum] = []
        series: dict[tuple[tuple[str, str], ...], list[dict[str, str]]] = {}
        paginator = self.cloudwatch.get_paginator("list_metrics")
        for page in paginator.paginate(Namespace=self.namespace, MetricName=name, Dimensions=wanted):
            for metric in page["Metrics"]:  # the same series may be listed more than once
                series[tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))] = metric[
                    "Dimensions"
                ]
        for dimension_list in series.values():
            stats = self.cloudwatch.get_metric_statistics(
                Namespace=self.namespace,
                MetricName=name,
                Dimensions=dimension_list,
                StartTime=end - timedelta(days=days),
                EndTime=end,
                Period=60,
                Statistics=["Average"],
            )
            dims = {d["Name"]: d["Value"] for d in dimension_list}
            points += [
                MetricDatum(name, p["Average"], dims, p.get("Unit", "None"), p["Timestamp"])
                for p in stats["Datapoints"]
            ]
        yield from sorted(points, key=lambda p: p.timestamp or end)
