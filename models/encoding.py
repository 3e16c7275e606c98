"""Turns feature frames into tensors: signed-log + standardised numerics, indexed categoricals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from models.moments import RunningMoments


@dataclass(frozen=True)
class FeatureEncoder:
    """Fitted on the training split only; stored in the model bundle and reused at serving time."""

    numeric: list[str]
    categorical: dict[str, list[str]]
    means: list[float]
    stds: list[float]

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, numeric: list[str], categorical: dict[str, list[str] | None]
    ) -> FeatureEncoder:
        """Fit on the training split. A categorical vocabulary of None (an open category) is learned
        from the split: values seen at least OPEN_MIN_COUNT times, most frequent first."""
        return EncoderStatistics(numeric, categorical).add(frame).encoder()

    def cardinalities(self) -> list[int]:
        """Embedding table sizes: the vocabulary plus index 0 for unknown or missing values."""
        return [len(vocab) + 1 for vocab in self.categorical.values()]

    def numeric_tensor(self, frame: pd.DataFrame) -> torch.Tensor:
        raw = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan) if self.numeric else None
        return self.numeric_tensor_of(raw if raw is not None else np.zeros((len(frame), 0)))

    def numeric_tensor_of(self, raw: np.ndarray) -> torch.Tensor:
        """The same encoding, from the numeric features already as a float array (in `numeric` order);
        large arrays are encoded in row blocks, so the temporaries are a block's, not the array's."""
        encoded = np.empty(raw.shape, dtype=np.float32)
        means, stds = np.asarray(self.means), np.asarray(self.stds)
        for start in range(0, max(len(raw), 1), ENCODE_BLOCK_ROWS):
            block = raw[start : start + ENCODE_BLOCK_ROWS]
            signed = np.sign(block) * np.log1p(np.abs(block))
            encoded[start : start + ENCODE_BLOCK_ROWS] = np.nan_to_num((signed - means) / stds, nan=0.0)
        return torch.from_numpy(encoded)

    @cached_property
    def _lookups(self) -> dict[str, dict[str, int]]:
        return {
            name: {value: index + 1 for index, value in enumerate(vocab)}
            for name, vocab in self.categorical.items()
        }

    @cached_property
    def _vocabulary_indexes(self) -> dict[str, pd.Index]:
        return {name: pd.Index(vocab, dtype=object) for name, vocab in self.categorical.items()}

    def categorical_tensor(self, frame: pd.DataFrame) -> torch.Tensor:
        """Embedding indices of a frame's categorical features, mapped column by column (vectorised;
        the same indices as `categorical_tensor_of`)."""
        indices = np.zeros((len(frame), len(self.categorical)), np.int64)
        for position, name in enumerate(self.categorical):
            column = frame[name]
            missing = column.isna().to_numpy()
            text = (
                column
                if pd.api.types.is_string_dtype(column.dtype)
                else column.astype(object).where(~missing)
            )
            # position in the vocabulary + 1, and -1 + 1 = 0 for an unknown value (a hash lookup)
            found = self._vocabulary_indexes[name].get_indexer(pd.Index(text[~missing].astype(str)))
            indices[~missing, position] = found + 1
        return torch.from_numpy(indices)

    def category_indexes(self, name: str, values: Sequence[object]) -> np.ndarray:
        """The embedding index of each value of categorical feature `name` (0: missing or unknown)."""
        lookup = self._lookups[name]
        return np.fromiter((_index(lookup, v) for v in values), dtype=np.int64, count=len(values))

    def categorical_tensor_of(self, columns: Mapping[str, Sequence[object]], rows: int) -> torch.Tensor:
        """The same encoding, from each categorical feature's values as a plain sequence."""
        indices = np.zeros((rows, len(self.categorical)), np.int64)
        for position, (name, lookup) in enumerate(self._lookups.items()):
            indices[:, position] = [_index(lookup, v) for v in columns[name]]
        return torch.from_numpy(indices)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, object]) -> FeatureEncoder:
        return cls(**payload)  # type: ignore[arg-type]


class EncoderStatistics:
    """What an encoder is fitted from, taken in batch by batch: a training split larger than memory
    is fitted as it streams past, with the encoder a whole frame would give (to rounding)."""

    def __init__(self, numeric: list[str], categorical: dict[str, list[str] | None]) -> None:
        self.numeric, self.categorical = list(numeric), dict(categorical)
        self._moments = {name: RunningMoments() for name in numeric}
        self._counts: dict[str, pd.Series] = {
            name: pd.Series(dtype="int64") for name, vocab in categorical.items() if vocab is None
        }

    def add(self, frame: pd.DataFrame) -> EncoderStatistics:
        """Take in a batch of training rows; returns itself."""
        # Column by column: one column's temporaries at a time, not the whole matrix's.
        for name, moments in self._moments.items():
            moments.add(_signed_log(frame, [name])[:, 0])
        for name, counts in self._counts.items():
            self._counts[name] = counts.add(value_counts(frame[name]), fill_value=0).astype("int64")
        return self

    def encoder(self) -> FeatureEncoder:
        """The encoder fitted on every batch taken in (an all-missing column: NaN mean, unit spread)."""
        vocabularies = {
            name: vocab if vocab is not None else vocabulary_of(self._counts[name])
            for name, vocab in self.categorical.items()
        }
        means = [m.mean for m in self._moments.values()]
        stds = [m.std if m.count and m.std > 1e-9 else 1.0 for m in self._moments.values()]
        return FeatureEncoder(self.numeric, vocabularies, means, stds)


ENCODE_BLOCK_ROWS = 262_144
OPEN_MIN_COUNT = 5
OPEN_MAX_VALUES = 1_000


def learned_vocabulary(values: pd.Series) -> list[str]:
    """The vocabulary of an open category: frequent values; the rest share the unknown bucket."""
    return vocabulary_of(value_counts(values))


def value_counts(values: pd.Series) -> pd.Series:
    """How often each value of a categorical column occurs, as the text it is looked up by."""
    return values.dropna().astype(str).value_counts()


def vocabulary_of(counts: pd.Series) -> list[str]:
    """The frequent values of an open category's counts, most frequent first, ties by value."""
    frequent = counts[counts >= OPEN_MIN_COUNT]
    ranked = sorted(frequent.index.tolist(), key=lambda v: (-int(counts[v]), v))
    return ranked[:OPEN_MAX_VALUES]


def _index(lookup: dict[str, int], value: object) -> int:
    """Embedding index of a categorical value; 0 for missing or unknown values."""
    if value is None or (isinstance(value, float) and value != value):
        return 0
    return lookup.get(value if isinstance(value, str) else str(value), 0)


def _signed_log(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    values = (
        frame[columns].to_numpy(dtype=np.float64, na_value=np.nan) if columns else np.zeros((len(frame), 0))
    )
    return np.sign(values) * np.log1p(np.abs(values))
