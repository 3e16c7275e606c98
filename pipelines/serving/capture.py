"""Data capture, as SageMaker endpoints do it: a sample of requests and responses kept in the lake."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from pipelines.ports import LakePort


class LakeCapture:
    """Buffers sampled rows (inputs, prediction, variant, time) and appends them to `capture.<model>`."""

    def __init__(
        self,
        lake: LakePort,
        model_name: str,
        sampling: float = 1.0,
        flush_rows: int = 1_000,
        seed: int | None = None,
    ) -> None:
        if not 0 <= sampling <= 1:
            raise ValueError("sampling must be between 0 and 1")
        self.lake, self.table = lake, f"capture.{model_name.replace('-', '_')}"
        self.sampling, self.flush_rows = sampling, flush_rows
        self.random = random.Random(seed)
        self.buffer: list[pd.DataFrame] = []
        self.lock = threading.Lock()

    def capture(self, variant: str, rows: pd.DataFrame, scores: list[float]) -> None:
        if self.random.random() >= self.sampling:
            return
        captured = rows.copy()
        captured["prediction"] = scores
        captured["variant"] = variant
        captured["captured_at"] = pd.Timestamp(datetime.now(UTC))
        with self.lock:
            self.buffer.append(captured)
            pending = sum(len(b) for b in self.buffer)
        if pending >= self.flush_rows:
            self.flush()

    def flush(self) -> int:
        """Append what is buffered to the lake; returns the number of rows written."""
        with self.lock:
            frames, self.buffer = self.buffer, []
        if not frames:
            return 0
        batch = pd.concat(frames, ignore_index=True)
        for column in batch.columns:
            if batch[column].dtype == object:
                batch[column] = batch[column].astype(str)
        self.lake.append(
            self.table, pa.Table.from_pandas(batch, preserve_index=False), {"mlops.capture": "endpoint"}
        )
        return len(batch)
