"""A seeded generator of subscription-churn event data.

Customers sign up, produce activity events at a personal rate and may churn. Churn risk depends
on plan, country, support tickets and fading activity, so the window aggregates in the feature
spec carry real signal. Each event is labelled with whether its customer churns within the next
30 days. Optional drift multiplies a numeric column (or reshuffles a categorical one) from a
given date; optional faults break the batch the ways real feeds break.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pipelines.datagen.perturb import Drift, inject_drift, inject_faults
from pipelines.usecase import DatasetSpec

HORIZON_DAYS = 30
PLANS = ("basic", "standard", "premium")
PLAN_WEIGHTS = (0.5, 0.35, 0.15)
PLAN_HAZARD = np.array([1.7, 1.0, 0.55])
PLAN_ACTIVITY = np.array([0.7, 1.0, 1.4])
PLAN_SPEND = np.array([8.0, 15.0, 30.0])
DEVICES = ("ios", "android", "web")
FADE_DAYS = 45.0


@dataclass(frozen=True)
class ChurnDataConfig:
    rows: int = 200_000
    seed: int = 7
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    days: int = 365
    drift: Drift | None = None
    faults: tuple[str, ...] = ()
    fault_fraction: float = 0.01
    extra: dict[str, float] = field(default_factory=dict)
    countries: int = 60  # the first N of the spec's allowed countries (200 for a 200-segment sweep)


def _country_effects(countries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Popularity weights and churn multipliers per country, fixed (not tied to the data seed)."""
    rng = np.random.default_rng(20240601)
    popularity = 1.0 / np.arange(1, len(countries) + 1) ** 0.9
    popularity /= popularity.sum()
    hazard = rng.lognormal(mean=0.0, sigma=0.35, size=len(countries))
    return popularity, hazard


def _simulate(
    cfg: ChurnDataConfig, countries: list[str], customers: int, rng: np.random.Generator
) -> pd.DataFrame:
    popularity, country_hazard = _country_effects(countries)
    country_idx = rng.choice(len(countries), size=customers, p=popularity)
    plan_idx = rng.choice(len(PLANS), size=customers, p=PLAN_WEIGHTS)
    signup = rng.uniform(-180, cfg.days - 20, size=customers)
    rate = rng.gamma(shape=2.0, scale=0.45, size=customers) * PLAN_ACTIVITY[plan_idx]
    ticket_propensity = rng.beta(1.0, 14.0, size=customers)
    hazard = (1 / 420) * PLAN_HAZARD[plan_idx] * country_hazard[country_idx] * np.exp(6 * ticket_propensity)
    churn_day = signup + rng.exponential(1.0 / hazard)

    active_from = np.maximum(signup, 0.0)
    active_to = np.minimum(churn_day, cfg.days)
    span = np.clip(active_to - active_from, 0.0, None)
    counts = rng.poisson(rate * span)
    owner = np.repeat(np.arange(customers), counts)
    t = active_from[owner] + rng.uniform(0, 1, size=owner.size) * span[owner]

    # Activity fades over the weeks before churn: thin events by their distance to the churn day.
    to_churn = churn_day[owner] - t
    keep_prob = np.where(to_churn < FADE_DAYS, 0.15 + 0.85 * to_churn / FADE_DAYS, 1.0)
    keep = rng.uniform(0, 1, size=owner.size) < keep_prob
    owner, t, to_churn = owner[keep], t[keep], to_churn[keep]

    near_churn = to_churn <= HORIZON_DAYS
    plan_of = plan_idx[owner]
    ticket_p = np.clip(ticket_propensity[owner] + np.where(near_churn, 0.12, 0.0), 0, 1)
    minutes = rng.lognormal(mean=2.6, sigma=0.7, size=owner.size) * np.where(near_churn, 0.6, 1.0)
    buys = rng.uniform(0, 1, size=owner.size) < 0.3
    amount = np.where(buys, rng.lognormal(np.log(PLAN_SPEND[plan_of]), 0.5), 0.0)

    return pd.DataFrame(
        {
            "_owner": owner,
            "_t": t,
            "country": np.asarray(countries)[country_idx[owner]],
            "plan": np.asarray(PLANS)[plan_of],
            "device": np.asarray(DEVICES)[rng.choice(3, size=owner.size, p=(0.4, 0.35, 0.25))],
            "session_minutes": np.clip(np.round(minutes, 2), 0, 1440),
            "amount": np.clip(np.round(amount, 2), 0, 10_000),
            "support_ticket": (rng.uniform(0, 1, size=owner.size) < ticket_p).astype("int64"),
            "churned_30d": near_churn.astype("int64"),
        }
    )


def generate_churn_events(spec: DatasetSpec, cfg: ChurnDataConfig) -> pd.DataFrame:
    """Generate exactly `cfg.rows` events, deterministic for a given seed."""
    if not 1_000 <= cfg.rows <= 10_000_000:
        raise ValueError(f"rows must be between 1,000 and 10,000,000, got {cfg.rows:,}")
    allowed = spec.categorical_vocabulary("country") or []
    if not allowed:
        raise ValueError("the churn example needs country's allowed set in the spec")
    if not 1 <= cfg.countries <= len(allowed):
        raise ValueError(
            f"countries must be between 1 and {len(allowed)} (the spec's allowed countries), got {cfg.countries}"
        )
    countries = allowed[: cfg.countries]
    rng = np.random.default_rng(cfg.seed)
    customers = max(50, cfg.rows // 60)
    while True:
        events = _simulate(cfg, countries, customers, np.random.default_rng(rng.integers(2**63)))
        if len(events) >= cfg.rows:
            break
        customers = int(customers * 1.3 * cfg.rows / max(len(events), 1)) + 10
    # Uniform thinning keeps every customer's process Poisson, just at a lower rate.
    chosen = np.sort(rng.choice(len(events), size=cfg.rows, replace=False))
    events = events.iloc[chosen].sort_values(["_t", "_owner"], kind="stable").reset_index(drop=True)

    seconds = np.round(events["_t"].to_numpy() * 86_400).astype("int64")
    events.insert(0, "event_time", pd.Timestamp(cfg.start) + pd.to_timedelta(seconds, unit="s"))
    events.insert(0, "customer_id", [f"cus-{cfg.seed}-{o:07d}" for o in events["_owner"]])
    events.insert(0, "event_id", [f"evt-{cfg.seed}-{i:08d}" for i in range(len(events))])
    events = events.drop(columns=["_owner", "_t"])
    events["event_time"] = events["event_time"].astype("datetime64[us, UTC]")
    events = events[list(spec.columns)]
    if cfg.drift is not None:
        events = inject_drift(events, spec, cfg.drift, rng)
    if cfg.faults:
        events = inject_faults(events, spec, cfg.faults, cfg.fault_fraction, rng)
    return events
