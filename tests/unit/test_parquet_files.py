"""Reading the columns a step needs from a Parquet file: the same frame pandas reads, and no more."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.parquet_files import read_columns


def _file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "entity": [f"e{i}" for i in range(3_000)],
            "amount": rng.normal(size=3_000),
            "plan": rng.choice(np.array(["basic", "pro", None], dtype=object), 3_000),
            "label": rng.integers(0, 2, 3_000),
        }
    ).to_parquet(path, row_group_size=1_000)
    return path


def test_the_wanted_columns_the_file_has_in_the_order_asked_once_each(tmp_path: Path) -> None:
    path = _file(tmp_path / "test.parquet")
    frame = read_columns(path, ["label", "amount", "plan", "absent", "label"])
    assert list(frame.columns) == ["label", "amount", "plan"]
    pd.testing.assert_frame_equal(frame, pd.read_parquet(path, columns=["label", "amount", "plan"]))


def test_the_first_rows_only_when_asked(tmp_path: Path) -> None:
    path = _file(tmp_path / "test.parquet")
    head = read_columns(path, ["entity"], rows=5)
    assert head["entity"].tolist() == ["e0", "e1", "e2", "e3", "e4"]
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(path).head(0).to_parquet(empty)
    assert list(read_columns(empty, ["entity"], rows=5).columns) == ["entity"]
    assert len(read_columns(empty, ["entity"], rows=5)) == 0
