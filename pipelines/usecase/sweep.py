"""The sweep a use case declares: a model per segment, times a hyperparameter search.

    sweep:
      segment: country            # a categorical column: one model per value
      search: random              # random (seeded) or grid
      trials_per_segment: 8       # random: draws per segment; grid: the first N of the grid
      seed: 7
      min_segment_rows: 200       # smaller segments are served by the global model
      space:
        learning_rate: {low: 0.001, high: 0.03, log: true}
        hidden_width: [16, 32, 64]
        depth: [1, 2]
        weight_decay: {low: 0.0, high: 0.001}
        epochs: [5, 10]
        batch_size: [32, 64]       # optional; default sweep.batch_size

Each parameter is a list of values or a range (`low`, `high`, optional `log`; integers stay
integers). A grid enumerates lists only. Parameters left out keep the environment's training
settings. The same trial settings are tried in every segment, so trials compare across segments.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PARAMETERS = ("learning_rate", "hidden_width", "depth", "weight_decay", "epochs", "batch_size")
_INTEGRAL = {"hidden_width", "depth", "epochs", "batch_size"}
_POSITIVE = {"learning_rate", "hidden_width", "depth", "epochs", "batch_size"}
_CEILING = {
    "hidden_width": 4096,
    "depth": 8,
    "epochs": 1000,
    "learning_rate": 1.0,
    "weight_decay": 1.0,
    "batch_size": 65_536,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high {self.high:g} is below low {self.low:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (low is {self.low:g})")
        return self


Values = list[float] | Range


class SweepSpec(_Strict):
    segment: str = Field(description="Categorical column: one model per value.")
    search: Literal["random", "grid"] = "random"
    trials_per_segment: int = Field(default=8, ge=1, le=10_000)
    seed: int = 7
    min_segment_rows: int = Field(default=200, ge=10, description="Smaller segments use the global model.")
    batch_size: int = Field(
        default=64, ge=1, le=65_536, description="Trials' batch size (segments are small), unless searched."
    )
    space: dict[str, Values] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid_space(self) -> SweepSpec:
        for name, values in self.space.items():
            if name not in PARAMETERS:
                raise ValueError(
                    f"sweep.space has unknown parameter {name!r} (known: {', '.join(PARAMETERS)})"
                )
            bounds = [values.low, values.high] if isinstance(values, Range) else list(values)
            if not bounds:
                raise ValueError(f"sweep.space.{name} is empty")
            for value in bounds:
                if (name in _POSITIVE and value <= 0) or value < 0 or value > _CEILING[name]:
                    low = "> 0" if name in _POSITIVE else ">= 0"
                    raise ValueError(
                        f"sweep.space.{name} value {value:g} is out of bounds ({low}, <= {_CEILING[name]:g})"
                    )
                if name in _INTEGRAL and not isinstance(values, Range) and value != int(value):
                    raise ValueError(f"sweep.space.{name} value {value:g} is not a whole number")
            if self.search == "grid" and isinstance(values, Range):
                raise ValueError(f"sweep.space.{name} is a range: a grid search needs a list of values")
        return self

    def trials(self) -> list[dict[str, float]]:
        """The trial settings tried in every segment, in a fixed order (seeded for random search)."""
        names = sorted(self.space)
        if self.search == "grid":
            lists: list[list[float]] = [v for n in names if not isinstance(v := self.space[n], Range)]
            grid = itertools.product(*lists)  # a grid has lists only (validated)
            return [
                _typed({name: float(value) for name, value in zip(names, combo, strict=True)})
                for combo in itertools.islice(grid, self.trials_per_segment)
            ]
        rng = random.Random(self.seed)
        return [_typed({n: _draw(rng, self.space[n]) for n in names}) for _ in range(self.trials_per_segment)]


def _draw(rng: random.Random, values: Values) -> float:
    if isinstance(values, Range):
        if values.log:
            return math.exp(rng.uniform(math.log(values.low), math.log(values.high)))
        return rng.uniform(values.low, values.high)
    return rng.choice(list(values))


def _typed(trial: dict[str, float]) -> dict[str, float]:
    return {n: round(v) if n in _INTEGRAL else float(v) for n, v in trial.items()}
