"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@pytest.fixture
def batch(small_events: pd.DataFrame, tmp_path: Path) -> Path:
    """The session's small example events as a Parquet batch to ingest."""
    path = tmp_path / "events.parquet"
    small_events.to_parquet(path, index=False)
    return path


def ingested_local_environment(root: Path, events: pd.DataFrame, patch: pytest.MonkeyPatch) -> Any:
    """A fresh local environment under `root` with `events` ingested; returns its pipeline context."""
    from mlops.bootstrap import bring_up_local
    from mlops.paths import PACKAGE_ROOT
    from mlops.settings import load_settings
    from pipelines.training import steps

    patch.setenv("MLOPS_LOCAL_ROOT", str(root / "local"))
    patch.setenv("MLOPS_PROJECT_ROOT", str(PACKAGE_ROOT))
    bring_up_local(load_settings("local"))
    source = root / "events.parquet"
    events.to_parquet(source, index=False)
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, source)
    return ctx
