"""The inference HTTP app, with SageMaker's contract: `GET /ping`, `POST /invocations` (port 8080).

Several variants can serve with traffic weights (A/B or a canary); a request may pin one with the
`X-Amzn-SageMaker-Target-Variant` header, and every answer names the variant that produced it.
"""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipelines.serving.assignment import sticky_choice
from pipelines.serving.capture import LakeCapture
from pipelines.serving.explain import EXPLAIN_HEADER, EXPLAIN_PARAMETER, explain, requested_features
from pipelines.serving.handler import (
    BadRequest,
    InferenceHandler,
    RequestRows,
    parse_body,
    response_body,
    source_headers,
)
from pipelines.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit
# A small request is scored on the event loop: handing it to a thread costs about 1 ms, more than
# scoring it (measured by bench/serving_latency.py). Concurrency comes from worker processes.
INLINE_BODY_BYTES = 32 * 1024
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
INFERENCE_ID_HEADER = "X-Inference-Id"


@dataclass
class Variant:
    name: str
    handler: InferenceHandler
    weight: float = 1.0
    version: str = ""  # the registry version it serves, for the service metrics


class VariantRouter:
    """Chooses the variant of each request by weight; weights can change while serving (canaries).
    Sticky routing (an experiment's) sends every request of one entity to the same variant."""

    def __init__(self, variants: list[Variant], seed: int | None = None, sticky: bool = False) -> None:
        if not variants or sum(v.weight for v in variants) <= 0:
            raise ValueError("at least one variant with a positive weight is needed")
        self.variants = {v.name: v for v in variants}
        self.random = random.Random(seed)
        self.sticky = sticky

    def set_weights(self, weights: dict[str, float]) -> None:
        for name, weight in weights.items():
            self.variants[name].weight = weight

    def close(self) -> None:
        """Release what the router holds (nothing here; a live router stops its watcher)."""

    def pick(self, requested: str | None, key: object = None) -> Variant:
        """The variant named by the request, else by the entity `key` when sticky, else by weight."""
        if requested:
            if requested not in self.variants:
                raise BadRequest(f"{TARGET_VARIANT}: unknown variant {requested!r}")
            return self.variants[requested]
        if self.sticky and key is not None:
            return self.variants[sticky_choice(key, [(v.name, v.weight) for v in self.variants.values()])]
        live = [v for v in self.variants.values() if v.weight > 0]
        return self.random.choices(live, weights=[v.weight for v in live])[0]


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY_BYTES: refused by Content-Length first, else while streaming."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _first_key(rows: RequestRows, router: VariantRouter) -> object:
    """The entity of a request (its first row's key): a request goes to one variant as a whole."""
    handler = next(iter(router.variants.values())).handler
    keys = rows.columns.get(handler.entity_key)
    return keys[0] if keys else None


def _explained(request: Request) -> list[str] | None:
    """The features a request asks to explain ([] for all), or None: most requests carry no query
    string and no X-Explain header, and pay two lookups."""
    header = request.headers.get(EXPLAIN_HEADER)
    if not request.scope.get("query_string") and header is None:
        return None
    return requested_features(request.query_params.get(EXPLAIN_PARAMETER, header))


def create_app(
    router: VariantRouter, capture: LakeCapture | None = None, metrics: ServiceMetrics | None = None
) -> FastAPI:
    service = metrics or ServiceMetrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (libraries, the models) lives as long as the server: moved out of
        # the collector's reach, a full collection no longer walks millions of objects mid-request.
        gc.collect()
        gc.freeze()
        service.start()
        yield
        service.stop()
        router.close()
        if capture is not None:  # what is still buffered reaches the lake on shutdown
            capture.close()

    app = FastAPI(title="mlops inference", docs_url=None, redoc_url=None, lifespan=lifespan)

    async def ping(_: Request) -> Response:
        return Response(status_code=200)

    async def scrape(_: Request) -> Response:
        return Response(service.exposition(), media_type=CONTENT_TYPE)

    async def invocations(request: Request) -> Response:
        body = await _bounded_body(request)
        if body is None:
            return JSONResponse({"error": f"payload exceeds {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            content_type = request.headers.get("content-type", "application/json")
            if router.sticky:  # the entity decides the variant: parse first to learn it
                parsed = parse_body(body, content_type)
                variant = router.pick(request.headers.get(TARGET_VARIANT), _first_key(parsed, router))
                predict = partial(variant.handler.predict_rows, parsed)
            else:
                variant = router.pick(request.headers.get(TARGET_VARIANT))
                predict = partial(variant.handler.predict, body, content_type)
            if len(body) <= INLINE_BODY_BYTES:
                rows, scores = predict()
            else:  # long CPU work goes off the event loop, so it does not hold up other requests
                rows, scores = await run_in_threadpool(predict)
            explained = _explained(request)
            explanation = None
            if explained is not None:
                if "text/csv" in request.headers.get("accept", ""):
                    raise BadRequest(f"{EXPLAIN_PARAMETER}: explanations are JSON; ask for application/json")
                explanation = await run_in_threadpool(explain, variant.handler, rows, explained)
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        sources = rows.sources
        service.scored(variant.name, variant.version, len(scores))
        inference_id = None
        if capture is not None:
            inference_id = capture.capture(
                variant.name, variant.handler.captured(rows), scores, len(sources["ignored"]), variant.version
            )
        content, media_type = response_body(
            scores,
            request.headers.get("accept", "application/json"),
            variant.handler.prediction_field,
            sources,
            explanation,
            variant.version,
        )
        headers = {INVOKED_VARIANT: variant.name, **source_headers(sources)}
        if inference_id is not None:  # row i of the request is `<id>-<i>` in the capture table
            headers[INFERENCE_ID_HEADER] = inference_id
        return Response(content, media_type=media_type, headers=headers)

    # Plain Starlette routes: the endpoints take the raw request, so FastAPI's parameter machinery
    # would only add time (measured ~50 us a request, a tenth of a one-row request's work).
    app.add_route("/ping", ping, methods=["GET"])
    app.add_route("/invocations", invocations, methods=["POST"])
    app.add_route("/metrics", scrape, methods=["GET"])
    app.add_middleware(MetricsMiddleware, metrics=service, variant_header=INVOKED_VARIANT.encode())
    return app
