"""A seeded generator of daily store demand: a regression example with a daily panel.

Each store reports one row per day: its units sold, whether a promotion ran, and its price index.
Demand has a store level, a weekly season, a slow trend, promotion lift and price elasticity; the
label is the units the store sells over the next 7 days (known only 7 days later, hence the
use case's label horizon). Past sales windows and lags carry most of the signal.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pipelines.usecase import UseCase

HORIZON_DAYS = 7
START = datetime(2024, 1, 1, tzinfo=UTC)
REGIONS = ("north", "south", "east", "west", "central")
FORMATS = ("small", "medium", "large")
FORMAT_LEVEL = np.array([40.0, 90.0, 200.0])
WEEKLY = np.array([0.85, 0.9, 0.95, 1.0, 1.15, 1.35, 1.2])  # Monday first


def generate_store_demand(usecase: UseCase, rows: int, seed: int) -> pd.DataFrame:
    """`rows` store-days (stores x 365 days, trimmed), deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    days = 365
    stores = max(20, -(-rows // days))
    region = rng.choice(len(REGIONS), stores)
    fmt = rng.choice(len(FORMATS), stores, p=(0.5, 0.35, 0.15))
    level = FORMAT_LEVEL[fmt] * rng.lognormal(0.0, 0.35, stores)
    trend = rng.normal(0.0, 0.25, stores)  # change over the year, per store

    total_days = days + HORIZON_DAYS
    t = np.arange(total_days)
    dow = (t + START.weekday()) % 7
    promo = rng.uniform(size=(stores, total_days)) < 0.12
    price = np.clip(rng.normal(1.0, 0.08, (stores, total_days)) - 0.15 * promo, 0.5, 2.0)
    mean = (
        level[:, None]
        * WEEKLY[dow][None, :]
        * (1 + trend[:, None] * t[None, :] / days)
        * (1 + 0.6 * promo)
        * price**-1.5
    )
    units = np.round(rng.gamma(6.0, np.clip(mean, 0.1, None) / 6.0), 1)
    ahead = np.cumsum(np.concatenate([np.zeros((stores, 1)), units], axis=1), axis=1)
    next_7 = ahead[:, 1 + HORIZON_DAYS : 1 + HORIZON_DAYS + days] - ahead[:, 1 : 1 + days]

    store_of = np.repeat(np.arange(stores), days)
    day_of = np.tile(np.arange(days), stores)
    frame = pd.DataFrame(
        {
            "record_id": [f"sd-{seed}-{s:05d}-{d:03d}" for s, d in zip(store_of, day_of, strict=True)],
            "store_id": [f"store-{seed}-{s:05d}" for s in store_of],
            "date": pd.Timestamp(START) + pd.to_timedelta(day_of, unit="D"),
            "region": np.asarray(REGIONS)[region[store_of]],
            "format": np.asarray(FORMATS)[fmt[store_of]],
            "promo": promo[:, :days].ravel(),
            "price_index": np.round(price[:, :days].ravel(), 3),
            "units": units[:, :days].ravel(),
            "units_next_7d": np.round(next_7.ravel(), 1),
        }
    )
    chosen = np.sort(rng.choice(len(frame), size=min(rows, len(frame)), replace=False))
    frame = frame.iloc[chosen].sort_values(["date", "store_id"], kind="stable").reset_index(drop=True)
    frame["date"] = frame["date"].astype("datetime64[us, UTC]")
    return frame
