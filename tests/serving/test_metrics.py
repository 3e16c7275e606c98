"""/metrics: Prometheus' text format, read back by Prometheus' own parser; with several workers, every
worker's values in one scrape; and the Grafana dashboard asks only for metrics the server exports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mlops.paths import PACKAGE_ROOT
from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.handler import InferenceHandler
from pipelines.serving.metrics import MULTIPROCESS_ENV

DASHBOARD = PACKAGE_ROOT / "infra" / "dashboards" / "serving.json"


def _samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def client(trained: tuple[Any, pd.DataFrame], usecase: Any) -> TestClient:
    handler = InferenceHandler(trained[0], usecase)
    return TestClient(create_app(VariantRouter([Variant("champion", handler, version="7")], seed=1)))


def test_requests_are_counted_timed_and_sized(client: TestClient, trained: tuple[Any, pd.DataFrame]) -> None:
    bundle, test = trained
    rows = json.loads(test[bundle.feature_names].head(5).to_json(orient="records"))
    with client:
        for _ in range(3):
            assert client.post("/invocations", json={"instances": rows}).status_code == 200
        assert (
            client.post(
                "/invocations", content=b"{not json", headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
        assert client.get("/ping").status_code == 200
        scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    samples = _samples(scrape.text)
    assert (
        _value(samples, "mlops_request_duration_seconds_count", route="/invocations", variant="champion") == 3
    )
    assert _value(samples, "mlops_request_duration_seconds_count", route="/invocations", variant="") == 1
    assert _value(samples, "mlops_responses_total", route="/invocations", code="200") == 3
    assert _value(samples, "mlops_responses_total", route="/invocations", code="400") == 1
    assert _value(samples, "mlops_responses_total", route="/ping", code="200") == 1
    assert _value(samples, "mlops_rows_scored_total", variant="champion", model_version="7") == 15
    assert _value(samples, "mlops_request_payload_bytes_count", route="/invocations") == 4
    assert _value(samples, "mlops_request_payload_bytes_sum", route="/invocations") > 0
    assert _value(samples, "mlops_requests_in_flight") == 1  # the scrape itself
    assert _value(samples, "mlops_process_resident_memory_bytes") > 10 * 2**20
    assert _value(samples, "mlops_process_cpu_seconds") > 0


_WORKER = """
import sys
from pipelines.serving.metrics import ServiceMetrics
metrics = ServiceMetrics()
for _ in range(int(sys.argv[1])):
    metrics.latency.labels("/invocations", "champion").observe(0.002)
    metrics.responses.labels("/invocations", "200").inc()
metrics.scored("champion", "3", 10 * int(sys.argv[1]))
"""


def test_several_workers_report_together(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, MULTIPROCESS_ENV: str(shared), "PYTHONPATH": str(PACKAGE_ROOT)}
    for requests in (2, 5):  # two worker processes
        subprocess.run([sys.executable, "-c", _WORKER, str(requests)], check=True, env=env, timeout=120)
    scrape = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.serving.metrics import ServiceMetrics; import sys; "
            "sys.stdout.write(ServiceMetrics().exposition().decode())",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    samples = _samples(scrape)
    assert _value(samples, "mlops_responses_total", route="/invocations", code="200") == 7
    assert _value(samples, "mlops_request_duration_seconds_count", route="/invocations") == 7
    assert _value(samples, "mlops_rows_scored_total", model_version="3") == 70
    pids = {s.labels.get("pid") for s in samples["mlops_process_cpu_seconds"]}
    assert len(pids) == 3  # each process reports its own CPU time


def test_the_dashboard_charts_only_exported_metrics(client: TestClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 6
    with client:
        client.get("/ping")
        exported = {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    exported |= (
        {f"{n}_total" for n in exported}
        | {f"{n}_bucket" for n in exported}
        | {f"{n}_count" for n in exported}
        | {f"{n}_sum" for n in exported}
    )
    for expression in expressions:
        for name in re.findall(r"\b(mlops_[a-z_]+)", expression):
            assert name in exported, f"the dashboard charts {name}, which the server does not export"
