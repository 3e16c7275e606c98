"""Mean and spread accumulated batch by batch, so statistics of a split larger than memory can be
fitted while it streams past (Chan et al.'s pairwise update of the sum of squared deviations)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class RunningMoments:
    """Count, mean and population spread of the non-missing values seen so far."""

    count: int = 0
    mean: float = math.nan
    squared_deviations: float = 0.0

    def add(self, values: np.ndarray) -> RunningMoments:
        """Take in a batch of values (NaN is missing and ignored); returns itself."""
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        size = int(values.size)
        if not size:
            return self
        mean = float(values.mean())
        deviations = float(np.square(values - mean).sum())
        if not self.count:
            self.count, self.mean, self.squared_deviations = size, mean, deviations
            return self
        total = self.count + size
        delta = mean - self.mean
        self.mean += delta * size / total
        self.squared_deviations += deviations + delta * delta * self.count * size / total
        self.count = total
        return self

    @property
    def std(self) -> float:
        """Population standard deviation (NumPy's default, ddof=0); NaN before any value."""
        return math.sqrt(self.squared_deviations / self.count) if self.count else math.nan
