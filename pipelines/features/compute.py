"""Features per entity, as of every event (vectorised: cumulative sums + binary search).

The row for event e of entity k holds aggregates over k's events in (t_e - window, t_e], ties at
t_e included: exactly what was known at t_e, nothing after it. Several events at one instant give
one row, with the values of the one with the greatest primary key. Besides window aggregates: counts
of categorical values over the windows, the latest value of any column, and lags (the value at the
entity's previous instants) with their differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.usecase import CategoryCountSpec, DatasetSpec, UseCase

FEATURE_TIME = "feature_time"
_SECONDS_BITS = 34  # ~544 years of seconds per entity slot


def _sorted_keys(events: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, np.ndarray]:
    # Ties at one instant are ordered by primary key, not by file order (which a lake does not keep).
    tie_break = [k for k in spec.primary_key if k in events.columns and k != spec.entity_key]
    order = [spec.entity_key, spec.event_time, *tie_break]
    ordered = events.sort_values(order, kind="stable").reset_index(drop=True)
    codes = pd.factorize(ordered[spec.entity_key])[0].astype(np.int64)
    times = ordered[spec.event_time].to_numpy(dtype="datetime64[s]").astype(np.int64)
    seconds = times - (times.min() if len(times) else 0)
    return ordered, (codes << _SECONDS_BITS) + seconds


def compute_window_features(events: pd.DataFrame, usecase: UseCase) -> pd.DataFrame:
    """One feature row per (entity, event time): every feature the use case declares."""
    dataset, view = usecase.dataset, usecase.features
    ordered, keys = _sorted_keys(events, dataset)
    last_tie = np.searchsorted(keys, keys, side="right") - 1
    out = {
        dataset.entity_key: ordered[dataset.entity_key].to_numpy(),
        FEATURE_TIME: ordered[dataset.event_time],
    }
    cumulative_sums: dict[str, np.ndarray] = {}  # per source, shared by every window

    def window_total(source: str, values: np.ndarray, first: np.ndarray) -> np.ndarray:
        """The sum of `values` over each row's window (a missing value adds nothing)."""
        if source not in cumulative_sums:
            cumulative_sums[source] = np.concatenate(([0.0], np.cumsum(np.nan_to_num(values, nan=0.0))))
        cumulative = cumulative_sums[source]
        return np.asarray(cumulative[last_tie + 1] - cumulative[first])

    # Per source, once: the numbers a window sums, and which events carry each counted value.
    numbers = {
        c: _as_float(ordered[c]) for c in dict.fromkeys(a.column for a in view.aggregations if a.column)
    }
    hits: dict[tuple[CategoryCountSpec, str], np.ndarray] = {}
    for counted in view.category_counts:
        text = ordered[counted.column].astype(str).to_numpy()
        for value in counted.values:
            hits[(counted, value)] = (text == value).astype(np.float64)
    for window in view.windows_days:
        first = np.searchsorted(keys, keys - window * 86_400, side="right")
        count = (last_tie + 1 - first).astype(np.float64)
        for agg in view.aggregations:
            name = agg.feature_name(window)
            if agg.function == "count" or agg.column is None:
                out[name] = count
                continue
            values = numbers[agg.column]
            if agg.function in ("sum", "mean"):
                total = window_total(agg.column, values, first)
                out[name] = total if agg.function == "sum" else total / np.maximum(count, 1)
            else:  # max over a window: the rolling implementation is clearer than a sparse table here
                grouped = (
                    ordered.assign(_v=values)
                    .groupby(dataset.entity_key, sort=False)
                    .rolling(f"{window}D", on=dataset.event_time)
                )
                out[name] = grouped["_v"].max().to_numpy()
        for (counted, value), indicator in hits.items():
            out[counted.feature_name(value, window)] = window_total(
                f"{counted.column}={value}", indicator, first
            )
    for column in view.latest:
        spec = dataset.columns[column]
        out[column] = ordered[column].to_numpy() if spec.is_categorical else _as_float(ordered[column])
    lag_sources = {lag.column for lag in view.lags}
    for column in lag_sources:
        out[f"_lag_source_{column}"] = _as_float(ordered[column])
    features = pd.DataFrame(out)
    # Several events at one instant give identical rows (ties are included): keep one.
    features = features.drop_duplicates([dataset.entity_key, FEATURE_TIME], keep="last").reset_index(
        drop=True
    )
    by_entity = features.groupby(dataset.entity_key, sort=False)
    for lag in view.lags:
        source = f"_lag_source_{lag.column}"
        for period in lag.periods:
            lagged = by_entity[source].shift(period)
            features[f"{lag.column}_lag{period}"] = lagged
            if lag.difference:
                features[f"{lag.column}_diff{period}"] = features[source] - lagged
    features = features.drop(columns=[f"_lag_source_{c}" for c in lag_sources])
    for name, kind in usecase.value_types().items():
        if kind == "integral":
            features[name] = features[name].astype(np.int64)
    return features


def _as_float(column: pd.Series) -> np.ndarray:
    """Numbers and booleans as float64, missing values as NaN."""
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def point_in_time_join(
    spine: pd.DataFrame,
    features: pd.DataFrame,
    entity_key: str,
    timestamp: str,
    ttl_days: int,
) -> pd.DataFrame:
    """Attach to each spine row the latest feature row of its entity at or before its timestamp.

    Feature rows older than `ttl_days` are not joined (the features are left missing), and a
    feature row after the spine timestamp is never used, so no future value leaks into training.
    """
    left = spine.reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    left = left.sort_values(timestamp, kind="stable")
    right = features.sort_values(FEATURE_TIME, kind="stable")
    right = right.drop(columns=[c for c in right.columns if c in left.columns and c != entity_key])
    joined = pd.merge_asof(
        left,
        right,
        left_on=timestamp,
        right_on=FEATURE_TIME,
        by=entity_key,
        direction="backward",
        allow_exact_matches=True,
        tolerance=pd.Timedelta(days=ttl_days),
    )
    return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)
