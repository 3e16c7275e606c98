"""A seeded generator of yearly company filings: a binary example with a yearly panel.

Each firm files once a year (fiscal year end, 31 December) for twenty years. A latent financial
health drifts from year to year; profitability, leverage, liquidity and dividends reflect it with
noise. The label says whether the firm is in distress the following year, so it is known one year
after the filing (the use case's label horizon). The sector is missing on some filings, and new
sectors appear that no spec lists (an open category).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.usecase import UseCase

YEARS = 20
FIRST_YEAR = 2005
SECTORS = ("energy", "materials", "industrials", "consumer", "health", "technology", "utilities")
NEW_SECTORS = ("space", "quantum")
SECTOR_RISK = np.array([0.3, 0.2, 0.0, 0.1, -0.3, -0.1, -0.4])


def generate_firm_distress(usecase: UseCase, rows: int, seed: int) -> pd.DataFrame:
    """`rows` filings (firms x 20 years, trimmed), deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    firms = max(50, -(-rows // YEARS))
    sector = rng.choice(len(SECTORS), firms)
    health = np.empty((firms, YEARS + 1))
    health[:, 0] = rng.normal(0.0, 1.0, firms) - SECTOR_RISK[sector]
    for year in range(1, YEARS + 1):
        health[:, year] = 0.8 * health[:, year - 1] + rng.normal(0.0, 0.55, firms) - 0.1 * SECTOR_RISK[sector]
    now, following = health[:, :YEARS], health[:, 1:]
    roa = np.clip(0.04 + 0.05 * now + rng.normal(0, 0.03, now.shape), -1, 1)
    leverage = np.clip(np.exp(0.2 - 0.35 * now + rng.normal(0, 0.2, now.shape)), 0, 20)
    current_ratio = np.clip(np.exp(0.3 + 0.25 * now + rng.normal(0, 0.25, now.shape)), 0, 20)
    dividend = rng.uniform(size=now.shape) < 1 / (1 + np.exp(-(0.5 + 1.5 * now)))
    employees = np.round(np.exp(rng.normal(6, 1.2, firms))[:, None] * np.exp(0.05 * now)).astype("int64")
    distress = rng.uniform(size=now.shape) < 1 / (1 + np.exp(-(-3.2 - 2.2 * following)))

    firm_of = np.repeat(np.arange(firms), YEARS)
    year_of = np.tile(np.arange(YEARS), firms)
    sectors = np.asarray(SECTORS, dtype=object)[sector[firm_of]]
    unknown = rng.uniform(size=sectors.size)
    sectors[unknown < 0.08] = None  # not reported on the filing
    sectors[(unknown >= 0.08) & (unknown < 0.1)] = rng.choice(NEW_SECTORS)
    frame = pd.DataFrame(
        {
            "filing_id": [f"f-{seed}-{f:05d}-{y:02d}" for f, y in zip(firm_of, year_of, strict=True)],
            "firm_id": [f"firm-{seed}-{f:05d}" for f in firm_of],
            "fiscal_year_end": pd.to_datetime([f"{FIRST_YEAR + y}-12-31" for y in year_of], utc=True),
            "sector": sectors,
            "roa": np.round(roa.ravel(), 4),
            "leverage": np.round(leverage.ravel(), 3),
            "current_ratio": np.round(current_ratio.ravel(), 3),
            "dividend_paid": dividend.ravel(),
            "employees": employees.ravel(),
            "distress_next_year": distress.ravel().astype("int64"),
        }
    )
    chosen = np.sort(rng.choice(len(frame), size=min(rows, len(frame)), replace=False))
    frame = (
        frame.iloc[chosen].sort_values(["fiscal_year_end", "firm_id"], kind="stable").reset_index(drop=True)
    )
    frame["fiscal_year_end"] = frame["fiscal_year_end"].astype("datetime64[us, UTC]")
    return frame
