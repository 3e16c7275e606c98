"""Explanations on request: per-feature attributions of each row's answer (integrated gradients,
models/explain.py), asked for with `?explain=true` (every feature) or `?explain=a,b` (those
features), or the `X-Explain` header with the same values. Requests that do not ask pay nothing.

The attributions come from the bundle's torch network, the same function the ONNX file computes
(within 1e-5: tests/model/test_onnx_model.py), so a row's attributions add up to its answer minus
the baseline's answer, up to the path integral's discretisation error.
"""

from __future__ import annotations

from typing import Any

from pipelines.serving.handler import BadRequest, InferenceHandler, ValidatedRows

EXPLAIN_PARAMETER = "explain"
EXPLAIN_HEADER = "x-explain"
MAX_EXPLAINED_ROWS = 100  # an explained row costs STEPS forward and backward passes
# Attributions add up to the answer minus the baseline within the midpoint rule's error, which falls
# with the square of the steps: at 32 it reached 6e-3 on the example model, at 64 a quarter of that.
STEPS = 64
_ALL = {"true", "1", "yes", "all"}
_NONE = {"", "false", "0", "no"}


def requested_features(value: str | None) -> list[str] | None:
    """What a request asks to explain: None (nothing), [] (every feature) or the named features."""
    if value is None or value.strip().lower() in _NONE:
        return None
    if value.strip().lower() in _ALL:
        return []
    return [name.strip() for name in value.split(",") if name.strip()]


def explain(handler: InferenceHandler, rows: ValidatedRows, features: list[str]) -> dict[str, Any]:
    """The explanation block of an answer; a 4xx for too many rows or a feature the model lacks."""
    from models.explain import integrated_gradients

    if rows.size > MAX_EXPLAINED_ROWS:
        raise BadRequest(
            f"{EXPLAIN_PARAMETER}: {rows.size} rows; at most {MAX_EXPLAINED_ROWS} rows per explained request",
            status=413,
        )
    names = handler.bundle.feature_names
    unknown = [name for name in features if name not in names]
    if unknown:
        raise BadRequest(
            f"{EXPLAIN_PARAMETER}: {unknown[:5]} not among the model's features ({', '.join(names)})"
        )
    attributions = integrated_gradients(handler.bundle, rows.numeric, rows.categorical, STEPS)
    wanted = features or names
    positions = [names.index(name) for name in wanted]
    return {
        "method": "integrated-gradients",
        "steps": STEPS,
        "baseline": attributions.baseline,
        "attributions": [
            {name: float(row[p]) for name, p in zip(wanted, positions, strict=True)}
            for row in attributions.values
        ],
    }
