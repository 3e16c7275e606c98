"""A current run's training set is built once: a rerun reuses the splits its run key names (the key
covers the snapshots, settings, use case and code they are made of), and a run killed before it
recorded them builds them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.adapters.factory import file_uri_to_path
from pipelines.training import steps
from tests.e2e.conftest import ingested_local_environment


def test_a_current_runs_training_set_is_reused(
    tmp_path: Path, small_events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = ingested_local_environment(tmp_path, small_events, monkeypatch)
    build = steps.feature_step(ctx)
    first = steps.prepare_step(ctx, build)
    real, calls = steps.write_splits, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "write_splits", counted)
    assert steps.prepare_step(ctx, build) == first
    assert calls == []  # no point-in-time join for a run that is current

    # Killed after the splits but before their row counts: the next run builds them again.
    rows = f"runs/{ctx.model_name}/{first.run_key}/data/{steps.ROWS_FILE}"
    file_uri_to_path(ctx.platform.artifacts.uri(rows)).unlink()
    assert steps.prepare_step(ctx, build) == first
    assert calls == [1]
    assert ctx.platform.artifacts.exists(rows)
