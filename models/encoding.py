"""Turns feature frames into tensors: signed-log + standardised numerics, indexed categoricals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch


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
        vocabularies = {
            name: vocab if vocab is not None else learned_vocabulary(frame[name])
            for name, vocab in categorical.items()
        }
        values = _signed_log(frame, numeric)
        means = np.nanmean(values, axis=0) if len(values) else np.zeros(len(numeric))
        stds = np.nanstd(values, axis=0) if len(values) else np.ones(len(numeric))
        stds = np.where(stds > 1e-9, stds, 1.0)
        return cls(numeric, vocabularies, [float(m) for m in means], [float(s) for s in stds])

    def cardinalities(self) -> list[int]:
        """Embedding table sizes: the vocabulary plus index 0 for unknown or missing values."""
        return [len(vocab) + 1 for vocab in self.categorical.values()]

    def numeric_tensor(self, frame: pd.DataFrame) -> torch.Tensor:
        raw = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan) if self.numeric else None
        return self.numeric_tensor_of(raw if raw is not None else np.zeros((len(frame), 0)))

    def numeric_tensor_of(self, raw: np.ndarray) -> torch.Tensor:
        """The same encoding, from the numeric features already as a float array (in `numeric` order)."""
        signed = np.sign(raw) * np.log1p(np.abs(raw))
        values = (signed - np.asarray(self.means)) / np.asarray(self.stds)
        return torch.from_numpy(np.nan_to_num(values, nan=0.0).astype(np.float32))

    @cached_property
    def _lookups(self) -> dict[str, dict[str, int]]:
        return {
            name: {value: index + 1 for index, value in enumerate(vocab)}
            for name, vocab in self.categorical.items()
        }

    def categorical_tensor(self, frame: pd.DataFrame) -> torch.Tensor:
        return self.categorical_tensor_of(
            {name: frame[name].tolist() for name in self.categorical}, len(frame)
        )

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


OPEN_MIN_COUNT = 5
OPEN_MAX_VALUES = 1_000


def learned_vocabulary(values: pd.Series) -> list[str]:
    """The vocabulary of an open category: frequent values; the rest share the unknown bucket."""
    counts = values.dropna().astype(str).value_counts()
    frequent = counts[counts >= OPEN_MIN_COUNT].head(OPEN_MAX_VALUES)
    return sorted(frequent.index.tolist(), key=lambda v: (-int(counts[v]), v))


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
