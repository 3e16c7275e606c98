"""Perturbations any example dataset can receive: drift from a date, and the faults real feeds have."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pipelines.usecase import DatasetSpec

FAULT_KINDS = ("null_keys", "out_of_range", "wrong_types", "duplicates")


@dataclass(frozen=True)
class Drift:
    """Shift `column` from `start` on: numeric columns are multiplied by `factor`; a categorical
    column has a `factor` share of its rows moved to its last `top_k` allowed values."""

    column: str
    start: datetime
    factor: float = 1.5
    top_k: int = 3


def inject_drift(
    events: pd.DataFrame, spec: DatasetSpec, drift: Drift, rng: np.random.Generator
) -> pd.DataFrame:
    """Shift one column's distribution for events at or after `drift.start`."""
    if drift.column not in spec.columns:
        raise ValueError(f"drift column {drift.column!r} is not in the dataset spec")
    column = spec.columns[drift.column]
    out = events.copy()
    after = out[spec.event_time] >= pd.Timestamp(drift.start)
    if column.is_numeric:
        shifted = out.loc[after, drift.column] * drift.factor
        upper = column.max if column.max is not None else np.inf
        out.loc[after, drift.column] = np.clip(shifted, column.min or 0, upper).round(2)
    else:
        vocab = spec.categorical_vocabulary(drift.column) or sorted(
            out[drift.column].dropna().astype(str).unique()
        )
        moved = after & (rng.uniform(0, 1, size=len(out)) < min(drift.factor, 1.0))
        out.loc[moved, drift.column] = rng.choice(vocab[-drift.top_k :], size=int(moved.sum()))
    return out


def inject_faults(
    events: pd.DataFrame, spec: DatasetSpec, kinds: tuple[str, ...], fraction: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Break a batch the ways real feeds break: null keys, out-of-range values, wrong types, duplicates."""
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
    out = events.copy()
    n = max(1, int(len(out) * fraction))
    numeric = [name for name, col in spec.columns.items() if col.type == "float" and name != spec.label]
    if not numeric and {"out_of_range", "wrong_types"} & set(kinds):
        raise ValueError("out_of_range and wrong_types faults need a float column in the dataset spec")
    for kind in kinds:
        rows = rng.choice(len(out), size=n, replace=False)
        if kind == "null_keys":
            out[spec.entity_key] = out[spec.entity_key].astype(object)
            out.loc[out.index[rows], spec.entity_key] = None
        elif kind == "out_of_range":
            column = numeric[0]
            out.loc[out.index[rows], column] = -abs(spec.columns[column].max or 1.0) - 1
        elif kind == "wrong_types":
            column = numeric[-1]
            out[column] = out[column].astype(object)
            out.loc[out.index[rows], column] = "n/a"
        elif kind == "duplicates":
            out = pd.concat([out, out.iloc[rows]], ignore_index=True)
    return out
