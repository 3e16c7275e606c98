"""Service metrics in Prometheus' text format, served at `GET /metrics`.

Per request: latency by route and variant, payload size, responses by status code, requests in
flight; per answer: rows scored by variant and model version; per process: CPU seconds and resident
memory. With several worker processes, each writes its values to files in a directory the server
shares with its workers (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`), so
whichever worker answers a scrape reports the whole server.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
ROUTES = ("/invocations", "/ping", "/metrics")
# One-row requests take about a millisecond, 100-row ones a few, big batches up to seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    0.128,
    0.256,
    0.512,
    1.0,
    2.5,
    5.0,
)
PAYLOAD_BUCKETS = tuple(float(4**k) for k in range(4, 13))  # 256 B to 16 MiB
PROCESS_SAMPLE_SECONDS = 5.0
CONTENT_TYPE = CONTENT_TYPE_LATEST

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def multiprocess() -> bool:
    """Whether values go to the shared directory (several workers) rather than this process's memory."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


class ServiceMetrics:
    """The metrics of one inference server (this process's share of them, in multiprocess mode)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in the shared files and are collected from there.
        own: dict[str, Any] = {"registry": None if multiprocess() else self.registry}
        self.latency = Histogram(
            "mlops_request_duration_seconds",
            "Time from request to the end of the response.",
            ["route", "variant"],
            buckets=LATENCY_BUCKETS,
            **own,
        )
        self.payload = Histogram(
            "mlops_request_payload_bytes", "Request body size.", ["route"], buckets=PAYLOAD_BUCKETS, **own
        )
        self.responses = Counter(
            "mlops_responses", "Responses by route and status code.", ["route", "code"], **own
        )
        self.rows = Counter(
            "mlops_rows_scored",
            "Rows scored, by variant and model version.",
            ["variant", "model_version"],
            **own,
        )
        self.in_flight = Gauge(
            "mlops_requests_in_flight", "Requests being served.", multiprocess_mode="livesum", **own
        )
        self.cpu = Gauge(
            "mlops_process_cpu_seconds",
            "CPU time of each server process.",
            multiprocess_mode="liveall",
            **own,
        )
        self.memory = Gauge(
            "mlops_process_resident_memory_bytes",
            "Peak resident memory of each server process.",
            multiprocess_mode="liveall",
            **own,
        )
        self._sampler = threading.Thread(target=self._sample_process, name="process-metrics", daemon=True)
        self._stopped = threading.Event()
        self._sample_once()

    def start(self) -> None:
        """Sample this process's CPU and memory every few seconds until `stop`."""
        if not self._sampler.is_alive():
            self._sampler.start()

    def stop(self) -> None:
        self._stopped.set()

    def _sample_once(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu.set(usage.ru_utime + usage.ru_stime)
        self.memory.set(usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024))

    def _sample_process(self) -> None:
        while not self._stopped.wait(PROCESS_SAMPLE_SECONDS):
            self._sample_once()

    def scored(self, variant: str, model_version: str, rows: int) -> None:
        self.rows.labels(variant, model_version).inc(rows)

    def exposition(self) -> bytes:
        """The text a Prometheus scrape gets: every worker's values in multiprocess mode."""
        if multiprocess():
            from prometheus_client import multiprocess as shared

            registry = CollectorRegistry()
            shared.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request and records its route, variant, status and body size (pure ASGI: no
    per-request objects beyond two closures)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, variant_header: bytes) -> None:
        self.app, self.metrics, self.variant_header = app, metrics, variant_header.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        started = time.perf_counter()
        answer = {"status": 500, "variant": ""}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == self.variant_header:
                        answer["variant"] = value.decode("latin-1")
            await send(message)

        metrics = self.metrics
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            metrics.in_flight.dec()
            metrics.latency.labels(route, answer["variant"]).observe(time.perf_counter() - started)
            metrics.responses.labels(route, str(answer["status"])).inc()
            if route == "/invocations":
                size = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), b"")
                if size.isdigit():
                    metrics.payload.labels(route).observe(int(size))
