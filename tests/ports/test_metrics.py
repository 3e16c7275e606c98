"""The metrics port: the same assertions against SQLite and CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.adapters.aws.metrics import BATCH, CloudWatchMetrics
from pipelines.adapters.local.metrics import SqliteMetrics
from pipelines.ports import MetricDatum, MetricsPort

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture(params=["local", "aws"])
def metrics(request: pytest.FixtureRequest, tmp_path: Path) -> MetricsPort:
    if request.param == "local":
        return SqliteMetrics(tmp_path / "metrics.db", "mlops/test")
    request.getfixturevalue("aws")
    return CloudWatchMetrics("mlops/test")


def _datum(value: float, minute: int, **dims: str) -> MetricDatum:
    return MetricDatum("auc", value, dims, "None", START + timedelta(minutes=minute))


def test_put_then_query_by_dimensions_in_time_order(metrics: MetricsPort) -> None:
    assert (
        metrics.put(
            [
                _datum(0.9, 2, model="a", environment="dev"),
                _datum(0.8, 1, model="a", environment="dev"),
                _datum(0.7, 1, model="b", environment="dev"),
            ]
        )
        == 3
    )
    assert [round(d.value, 6) for d in metrics.query("auc", {"model": "a"})] == [0.8, 0.9]
    assert sorted(round(d.value, 6) for d in metrics.query("auc", {"environment": "dev"})) == [0.7, 0.8, 0.9]
    assert {d.dimensions["model"] for d in metrics.query("auc")} == {"a", "b"}
    assert list(metrics.query("latency")) == []


def test_large_puts_are_batched(metrics: MetricsPort) -> None:
    many = [_datum(float(i % 7), i % 50, model="a") for i in range(BATCH + 5)]
    assert metrics.put(many) == BATCH + 5
    assert list(metrics.query("auc", {"model": "a"}))
