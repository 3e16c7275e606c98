"""Process-wide defaults set before Prefect, MLflow or Great Expectations are imported."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from mlops.paths import project_root

_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    # Show our own loggers (ingest, features, training epochs) in the flow's console output.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "pipelines,models",
    "PREFECT_LOGGING_LEVEL": "INFO",
    # Steps also run outside flows (benchmarks, notebooks): their logs then stay local, silently.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # Prefect waits 20 s for its ephemeral API by default; a busy 2-core machine needs longer.
    # Nothing a user runs may depend on an idle machine (a running server avoids the wait altogether).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def configure_runtime() -> None:
    """Telemetry off, our loggers on, Prefect's home inside the project unless set."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    _bound_native_threads()
    home = Path(os.environ.setdefault("PREFECT_HOME", str(project_root() / ".mlops" / "prefect")))
    home.mkdir(parents=True, exist_ok=True)
    for name in ("pipelines", "models"):
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("mlflow", "alembic", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # pyiceberg warns when overwriting an empty table; that is our first feature build, not a problem.
    warnings.filterwarnings("ignore", message="Delete operation did not match any records")


def _bound_native_threads() -> None:
    """BLAS and OpenMP pools read their size when they load: size them to the CPUs this process can
    get (models.threads) before numpy or torch is imported, unless the user already chose."""
    from models.threads import BLAS_ENV, thread_budget

    if all(name in os.environ for name in BLAS_ENV):
        return
    try:
        budget = thread_budget()
    except ValueError:
        return  # a bad MLOPS_TORCH_THREADS is reported where torch is configured, in one line
    for name in BLAS_ENV:
        os.environ.setdefault(name, str(budget.threads))
