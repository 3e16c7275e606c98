"""A training split read from its Parquet file in row batches, so what the job holds is the tensors
it trains on, never the split as a frame (a 7 M-row split was 0.9 GB as a frame, 3.5 GB at the peak
of reading and encoding it whole; see README, Performance)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from models.bundle import Target
from models.encoding import EncoderStatistics, FeatureEncoder
from models.moments import RunningMoments
from models.train import TensorSplit
from pipelines.parquet_files import streaming_parquet

BATCH_ROWS = 262_144
CATEGORY_INDEX_DTYPE = torch.int32


def split_tensors(encoder: FeatureEncoder, frame: pd.DataFrame, label: str, target: Target) -> TensorSplit:
    """A split as the tensors the loop trains on: encoded features and the scaled label."""
    labels = target.scaled(frame[label].to_numpy(dtype="float64")).astype("float32")
    return TensorSplit(
        encoder.numeric_tensor(frame), encoder.categorical_tensor(frame), torch.from_numpy(labels)
    )


@dataclass(frozen=True)
class SplitFile:
    """A split's Parquet file and what the model learns from it: its features and its label."""

    path: Path
    numeric: list[str]
    categorical: dict[str, list[str] | None]  # vocabularies; None for an open category
    label: str

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.numeric, *self.categorical, self.label]))

    def __len__(self) -> int:
        return int(pq.ParquetFile(self.path).metadata.num_rows)

    def batches(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The split's rows in order, BATCH_ROWS at a time, as frames of `columns` (default: all)."""
        parquet = streaming_parquet(self.path)
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns or self.columns):
            yield pa.Table.from_batches([batch]).to_pandas()

    def fit(self, task: str, encoder: FeatureEncoder | None = None) -> tuple[FeatureEncoder, Target]:
        """The encoder (unless one is given, e.g. a champion's) and the target fitted on this split,
        in one pass over it."""
        statistics = EncoderStatistics(self.numeric, self.categorical)
        labels = RunningMoments()
        for batch in self.batches(None if encoder is None else [self.label]):
            if encoder is None:
                statistics.add(batch)
            labels.add(batch[self.label].to_numpy(dtype="float64"))
        return encoder or statistics.encoder(), Target.of_moments(task, labels)

    def tensors(self, encoder: FeatureEncoder, target: Target) -> TensorSplit:
        """The split as the loop trains on it, encoded batch by batch into tensors sized up front."""
        rows = len(self)
        whole = TensorSplit(
            torch.empty((rows, len(encoder.numeric)), dtype=torch.float32),
            # 32-bit indexes hold any vocabulary and take half the room; embeddings take them as they are.
            torch.empty((rows, len(encoder.categorical)), dtype=CATEGORY_INDEX_DTYPE),
            torch.empty(rows, dtype=torch.float32),
        )
        start = 0
        for batch in self.batches():
            part = split_tensors(encoder, batch, self.label, target)
            stop = start + len(part)
            whole.numeric[start:stop] = part.numeric
            whole.categorical[start:stop] = part.categorical
            whole.labels[start:stop] = part.labels
            start = stop
        if start != rows:
            raise ValueError(f"{self.path} held {start} rows, its metadata says {rows}")
        return whole

    def encoded(self, encoder: FeatureEncoder, target: Target) -> EncodedSplit:
        """The split as tensors made block by block each time it is read, never held whole."""
        return EncodedSplit(self, encoder, target)


@dataclass(frozen=True)
class EncodedSplit:
    """A split the loop scores every epoch without holding it: each pass reads its file again and
    encodes one batch at a time. The training job keeps its validation split this way: at 7.5 M
    rows that is 0.45 GB it does not hold, for a read and an encoding per epoch (a few seconds
    against minutes of training)."""

    file: SplitFile
    encoder: FeatureEncoder
    target: Target

    def __len__(self) -> int:
        return len(self.file)

    def blocks(self, rows: int) -> Iterator[TensorSplit]:
        """The split in order, in blocks of at most `rows` rows."""
        for batch in self.file.batches():
            yield from split_tensors(self.encoder, batch, self.file.label, self.target).blocks(rows)
