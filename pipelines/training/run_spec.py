"""The run spec of a training job: everything the job needs, passed by URI (a file locally, S3 in AWS)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mlops.contract import Artifacts, Tracking
from mlops.settings import TrainingSettings

RESULT_FILE = "result.json"


def architecture_of(settings: TrainingSettings) -> dict[str, Any]:
    """The network's shape as a bundle records it."""
    return {
        "embedding_dim": settings.embedding_dim,
        "hidden_sizes": list(settings.hidden_sizes),
        "dropout": settings.dropout,
    }


def result_uri_of(spec_uri: str) -> str:
    """A run writes `result.json` next to its `run_spec.json` (wherever the artifact store is)."""
    return spec_uri.rsplit("/", 1)[0] + "/" + RESULT_FILE


class TrainingRunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_key: str
    model_name: str
    experiment: str
    artifacts: Artifacts
    tracking: Tracking
    run_prefix: str
    train_key: str
    valid_key: str
    label: str
    task: Literal["binary", "regression"] = "binary"
    numeric_features: list[str]
    categorical_features: dict[str, list[str] | None]
    training: TrainingSettings
    warm_start_uri: str | None = None  # the champion bundle this run continues from, if any
    tags: dict[str, str] = {}

    def key(self, name: str) -> str:
        """Artifact key of a file that belongs to this run."""
        return f"{self.run_prefix}/{name}"
