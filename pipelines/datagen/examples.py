"""Example data for any use case that names a generator (`example.generator` in its spec).

`mlops data generate` and `mlops demo` call `generate_example`; drift and faults apply to any
generated dataset the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipelines.datagen.perturb import Drift, inject_drift, inject_faults
from pipelines.usecase import UseCase, UseCaseError

Generator = Callable[[UseCase, int, int, int | None], pd.DataFrame]  # use case, rows, seed, segments
MIN_ROWS, MAX_ROWS = 1_000, 10_000_000


def _churn(usecase: UseCase, rows: int, seed: int, segments: int | None) -> pd.DataFrame:
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events

    config = ChurnDataConfig(rows=rows, seed=seed)
    if segments is not None:  # its sweep segments by country
        if usecase.sweep is None or usecase.sweep.segment != "country":
            raise UseCaseError(
                "--segments: this generator varies countries, and the spec's sweep.segment is not country"
            )
        allowed = len(usecase.dataset.categorical_vocabulary("country") or [])
        if not 1 <= segments <= allowed:
            raise UseCaseError(
                f"--segments {segments}: must be between 1 and {allowed} (the spec's allowed countries)"
            )
        config = ChurnDataConfig(rows=rows, seed=seed, countries=segments)
    return generate_churn_events(usecase.dataset, config)


def _fixed_segments(name: str, segments: int | None) -> None:
    if segments is not None:
        raise UseCaseError(f"--segments {segments}: example.generator {name!r} does not vary its segments")


def _store_demand(usecase: UseCase, rows: int, seed: int, segments: int | None) -> pd.DataFrame:
    from pipelines.datagen.store_demand import generate_store_demand

    _fixed_segments("store_demand", segments)
    return generate_store_demand(usecase, rows, seed)


def _firm_distress(usecase: UseCase, rows: int, seed: int, segments: int | None) -> pd.DataFrame:
    from pipelines.datagen.firm_distress import generate_firm_distress

    _fixed_segments("firm_distress", segments)
    return generate_firm_distress(usecase, rows, seed)


GENERATORS: dict[str, Generator] = {
    "churn": _churn,
    "store_demand": _store_demand,
    "firm_distress": _firm_distress,
}


def generate_example(
    usecase: UseCase,
    rows: int,
    seed: int,
    drift: Drift | None = None,
    faults: tuple[str, ...] = (),
    fault_fraction: float = 0.01,
    segments: int | None = None,
) -> pd.DataFrame:
    """`rows` rows of the use case's example data, with optional drift and faults (seeded);
    `segments` asks for that many values of the sweep's segment column, where the generator can."""
    if usecase.example is None:
        raise UseCaseError(
            f"use case {usecase.dataset.name!r} names no example data generator (example.generator): "
            "bring your own file and ingest it (mlops ingest FILE)"
        )
    name = usecase.example.generator
    if name not in GENERATORS:
        raise UseCaseError(
            f"example.generator: {name!r} is not a known generator (known: {', '.join(sorted(GENERATORS))})"
        )
    if not MIN_ROWS <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between {MIN_ROWS:,} and {MAX_ROWS:,}, got {rows:,}")
    try:
        frame = GENERATORS[name](usecase, rows, seed, segments)
    except KeyError as exc:
        raise UseCaseError(
            f"example.generator {name!r} cannot produce column {exc}: it generates its own example's columns"
        ) from None
    missing = [c for c in usecase.dataset.columns if c not in frame.columns]
    if missing:
        raise UseCaseError(
            f"example.generator {name!r} does not produce the declared column(s) {missing}: "
            "it generates its own example's columns only"
        )
    frame = frame[list(usecase.dataset.columns)]
    rng = np.random.default_rng(seed + 1)
    if drift is not None:
        frame = inject_drift(frame, usecase.dataset, drift, rng)
    if faults:
        frame = inject_faults(frame, usecase.dataset, faults, fault_fraction, rng)
    return frame
