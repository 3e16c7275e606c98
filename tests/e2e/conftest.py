"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture
def batch(small_events: pd.DataFrame, tmp_path: Path) -> Path:
    """The session's small example events as a Parquet batch to ingest."""
    path = tmp_path / "events.parquet"
    small_events.to_parquet(path, index=False)
    return path
