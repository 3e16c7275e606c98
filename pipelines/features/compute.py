"""Window aggregates per entity, as of every event (vectorised: cumulative sums + binary search).

The row for event e of entity k holds aggregates over k's events in (t_e - window, t_e], ties at
t_e included: exactly what was known at t_e, nothing after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.usecase import DatasetSpec, FeatureViewSpec

FEATURE_TIME = "feature_time"
_SECONDS_BITS = 34  # ~544 years of seconds per entity slot


def _sorted_keys(events: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, np.ndarray]:
    ordered = events.sort_values([spec.entity_key, spec.event_time], kind="stable").reset_index(drop=True)
    codes = pd.factorize(ordered[spec.entity_key])[0].astype(np.int64)
    times = ordered[spec.event_time].to_numpy(dtype="datetime64[s]").astype(np.int64)
    seconds = times - (times.min() if len(times) else 0)
    return ordered, (codes << _SECONDS_BITS) + seconds


def compute_window_features(
    events: pd.DataFrame, dataset: DatasetSpec, view: FeatureViewSpec
) -> pd.DataFrame:
    """One feature row per (entity, event time): the view's aggregates and latest categoricals."""
    ordered, keys = _sorted_keys(events, dataset)
    last_tie = np.searchsorted(keys, keys, side="right") - 1
    out = {
        dataset.entity_key: ordered[dataset.entity_key].to_numpy(),
        FEATURE_TIME: ordered[dataset.event_time],
    }
    for window in view.windows_days:
        first = np.searchsorted(keys, keys - window * 86_400, side="right")
        for agg in view.aggregations:
            name = agg.feature_name(window)
            values = (
                np.ones(len(ordered))
                if agg.column is None
                else ordered[agg.column].to_numpy(np.float64, na_value=0.0)
            )
            cumulative = np.concatenate(([0.0], np.cumsum(values)))
            total = cumulative[last_tie + 1] - cumulative[first]
            count = (last_tie + 1 - first).astype(np.float64)
            if agg.function in ("count", "sum"):
                out[name] = total if agg.function == "sum" else count
            elif agg.function == "mean":
                out[name] = total / np.maximum(count, 1)
            else:  # max over a window: the rolling implementation is clearer than a sparse table here
                grouped = ordered.groupby(dataset.entity_key, sort=False).rolling(
                    f"{window}D", on=dataset.event_time
                )
                out[name] = grouped[agg.column].max().to_numpy()
    for column in view.latest:
        out[column] = ordered[column].to_numpy()
    features = pd.DataFrame(out)
    for agg_name, kind in view.value_types().items():
        if kind == "integral":
            features[agg_name] = features[agg_name].astype(np.int64)
    # Several events at one instant give identical rows (ties are included): keep one.
    return features.drop_duplicates([dataset.entity_key, FEATURE_TIME], keep="last").reset_index(drop=True)


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
