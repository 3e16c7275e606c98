"""Warm starts: a run continues from the champion's weights and encoding when the two are compatible.

Compatible means the same feature columns in the same order, the same categorical features, the
same task and the same architecture: then the champion's network accepts the new run's inputs as
they are encoded, and its weights are a better start than random ones. The encoding is the
champion's too (its scaling and vocabularies), since the weights were learned against it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from models.bundle import META_FILE
from pipelines.adapters.factory import read_uri
from pipelines.ports import ModelVersion

log = logging.getLogger(__name__)


def compatibility_problem(
    meta: dict[str, Any],
    numeric: list[str],
    categorical: list[str],
    task: str,
    architecture: dict[str, Any],
) -> str | None:
    """Why a bundle (its `bundle.json`) cannot seed a run with these inputs; None when it can."""
    encoder = meta.get("encoder", {})
    if list(encoder.get("numeric", [])) != numeric:
        return "its numeric features differ"
    if list(encoder.get("categorical", {})) != categorical:
        return "its categorical features differ"
    if meta.get("target", {}).get("task", "binary") != task:
        return "its task differs"
    theirs = meta.get("architecture", {})
    if {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in theirs.items()} != architecture:
        return "its architecture differs"
    return None


def warm_start_source(
    champion: ModelVersion | None,
    numeric: list[str],
    categorical: list[str],
    task: str,
    architecture: dict[str, Any],
) -> str | None:
    """The champion's bundle URI when a run may continue from it; None (and why, in the log) otherwise."""
    if champion is None:
        log.info("warm start: no champion yet; training from scratch")
        return None
    meta = json.loads(read_uri(f"{champion.artifact_uri.rstrip('/')}/{META_FILE}"))
    problem = compatibility_problem(meta, numeric, categorical, task, architecture)
    if problem is not None:
        log.info("warm start: champion v%d not used (%s); training from scratch", champion.version, problem)
        return None
    log.info("warm start: continuing from champion v%d", champion.version)
    return champion.artifact_uri
