"""Experiment tracking through MLflow: a local SQLite backend, or SageMaker's managed MLflow server.

Both are the same MLflow API; only the tracking URI differs (a sqlite:/// URI or the server's ARN).
"""

from __future__ import annotations

import logging
import os
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logging.getLogger("alembic").setLevel(logging.WARNING)

SYSTEM_METRICS_INTERVAL_SECONDS = 10


def process_usage() -> dict[str, float]:
    """Peak resident memory and CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
    return {
        "system/process_peak_rss_megabytes": peak_kib / 1024,
        "system/process_cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


class MlflowTracker:
    """TrackerPort over MLflow's fluent API (needed for system metrics)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location

    def _experiment_id(self) -> str:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        return str(mlflow.create_experiment(self.experiment, artifact_location=self.artifact_location))

    @contextmanager
    def run(self, run_name: str, run_id: str | None = None) -> Iterator[str]:
        """Start (or resume, when `run_id` is given) a run that samples system metrics."""
        os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
        import mlflow

        experiment_id = self._experiment_id()
        # Each sample also reads the run back from the store, holding the GIL for a while: every 2 s
        # it cost the training loop 10 to 25 % on the 2-core reference machine; every 10 s
        # (MLflow's default) it is lost in the noise. Short runs get the usage logged at the end.
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_SECONDS)
        mlflow.set_system_metrics_samples_before_logging(1)
        with mlflow.start_run(
            run_id=run_id,
            run_name=None if run_id else run_name,
            experiment_id=experiment_id,
            log_system_metrics=True,
        ) as active:
            yield active.info.run_id
            # MLflow samples system metrics every few seconds, so a short run may get none: always
            # record what this process used.
            mlflow.log_metrics(process_usage())

    def log_params(self, params: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: Path) -> None:
        import mlflow

        mlflow.log_artifact(str(path))
