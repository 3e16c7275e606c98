"""Drafting a use-case spec from a sample of the user's data, and explaining what a spec will do.

The draft is a starting point: types, ranges, allowed sets and nullability are read from the
sample; the entity key, event time, primary key and label are guesses the user confirms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipelines.usecase.spec import UseCase, UseCaseError

MAX_CATEGORIES = 50
LABEL_NAMES = re.compile(r"(label|target|outcome|default|fraud|^y$|_next_|_future)", re.IGNORECASE)


def read_sample(path: Path, rows: int = 200_000) -> pd.DataFrame:
    """The first `rows` rows of a CSV or Parquet file."""
    if not path.exists():
        raise UseCaseError(f"sample file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, nrows=rows)
        text_columns = [
            c
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
        for column in text_columns:
            parsed = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
            if parsed.notna().mean() > 0.95 and frame[column].astype(str).str.contains(r"\d{4}-\d{2}").all():
                frame[column] = parsed
        return frame
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path).head(rows)
    raise UseCaseError(f"{path}: use a .csv or .parquet sample")


def _column(series: pd.Series) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    values = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(series):
        spec["type"] = "timestamp"
    elif pd.api.types.is_bool_dtype(series):
        spec["type"] = "bool"
    elif pd.api.types.is_integer_dtype(series) or (
        pd.api.types.is_float_dtype(series)
        and len(values)
        and (values == values.round()).all()
        and set(values.unique()) <= {0, 1}
    ):
        spec["type"] = "int"
        if set(values.unique()) <= {0, 1}:
            spec["allowed"] = [0, 1]
        elif len(values):
            spec["min"] = int(min(values.min(), 0))
    elif pd.api.types.is_numeric_dtype(series):
        spec["type"] = "float"
        if len(values) and values.min() >= 0:
            spec["min"] = 0
    elif values.nunique() <= MAX_CATEGORIES:
        spec["type"] = "category"
        spec["allowed"] = sorted(str(v) for v in values.unique())
    else:
        spec["type"] = "string"
    if series.isna().any():
        spec["nullable"] = True
    return spec


def _guess(frame: pd.DataFrame, columns: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    rows = len(frame)
    times = [c for c, s in columns.items() if s["type"] == "timestamp"]
    unique = [c for c, s in columns.items() if s["type"] in ("string", "int") and frame[c].nunique() == rows]
    keyish = [
        c
        for c, s in columns.items()
        if s["type"] in ("string", "int", "category") and 1 < frame[c].nunique() < rows and c not in unique
    ]
    keyish.sort(key=lambda c: (not c.lower().endswith("id"), -frame[c].nunique()))
    labels = [c for c in columns if LABEL_NAMES.search(c) and columns[c]["type"] in ("int", "float", "bool")]
    binary = [c for c, s in columns.items() if s.get("allowed") == [0, 1] or s["type"] == "bool"]
    candidates = labels or binary
    ids = sorted(unique, key=lambda c: not c.lower().endswith("id"))
    return {
        "event_time": times[0] if times else None,
        "entity_key": keyish[0] if keyish else None,
        "primary_key": ids[0] if ids else None,
        "label": candidates[-1] if candidates else None,
    }


def draft_usecase(frame: pd.DataFrame, name: str) -> str:
    """A use-case YAML drafted from `frame`, with the guesses marked for the user to confirm."""
    if frame.empty:
        raise UseCaseError("the sample has no rows")
    columns = {str(c): _column(frame[c]) for c in frame.columns}
    roles = _guess(frame, columns)
    missing = [role for role, column in roles.items() if column is None]
    for role in ("entity_key", "primary_key"):
        key = roles[role]
        if key and columns[key]["type"] in ("category", "int"):
            columns[key] = {
                "type": "string",
                "description": f"guessed {role}",
            }  # new keys must not be refused
    label = roles["label"]
    task = (
        "binary"
        if label and (columns[label].get("allowed") == [0, 1] or columns[label]["type"] == "bool")
        else "regression"
    )
    roles_used = {v for v in roles.values() if v}
    numeric = [c for c, s in columns.items() if s["type"] in ("int", "float", "bool") and c not in roles_used]
    categories = [c for c, s in columns.items() if s["type"] == "category" and c not in roles_used]
    for column in categories:
        columns[column]["open"] = True  # new values are accepted (one shared bucket) until you close the set
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "my_data"
    spec: dict[str, Any] = {
        "task": {"type": task, "slices": categories[:2], "label_horizon_days": 0},
        "dataset": {
            "name": slug,
            "entity_key": roles["entity_key"] or "CHOOSE_A_COLUMN",
            "event_time": roles["event_time"] or "CHOOSE_A_COLUMN",
            "label": label or "CHOOSE_A_COLUMN",
            "primary_key": [roles["primary_key"] or "CHOOSE_A_COLUMN"],
            "columns": columns,
            "statistics": {"min_rows": 1},
        },
        "features": {
            "name": f"{slug[:50]}_features",
            "windows_days": [7, 30],
            "aggregations": [{"function": "count"}]
            + [{"function": "sum", "column": c} for c in numeric[:10]],
            "latest": categories[:5] + numeric[:5],
            "ttl_days": 90,
        },
    }
    header = [
        f"# Drafted from a sample of {len(frame):,} rows by `mlops usecase init`. Confirm before use:",
        f"#   entity_key {roles['entity_key']!r}, event_time {roles['event_time']!r}, "
        f"primary_key {roles['primary_key']!r} and label {label!r} are guesses;",
        f"#   task.type {task!r} follows the label; set task.label_horizon_days to how far ahead the label looks;",
        "#   allowed sets and ranges come from the sample: widen them where the sample is not the whole story.",
    ]
    if missing:
        header.append(f"#   no guess for: {', '.join(missing)} (CHOOSE_A_COLUMN below)")
    return "\n".join(header) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def explain(usecase: UseCase) -> list[str]:
    """What each part of a spec will do, in plain sentences."""
    ds, task, view = usecase.dataset, usecase.task, usecase.features
    label = ds.columns[ds.label]
    lines = [
        f"task: {task.type} on {ds.label!r} ({label.type}); loss "
        + (
            "binary cross-entropy, metrics AUC, log loss, calibration"
            if task.type == "binary"
            else "squared error, metrics R^2, RMSE, MAE, residuals"
        ),
        f"model: registered as {usecase.model_name!r}; served answers carry {usecase.prediction_field!r}",
        f"rows: one per {ds.primary_key} value, entity {ds.entity_key!r}, time {ds.event_time!r}",
    ]
    if task.label_horizon_days:
        lines.append(
            f"label horizon: rows newer than {task.label_horizon_days:g} days before the newest are left out of training"
        )
    else:
        lines.append(
            "label horizon: 0 (the label is known at the event; set task.label_horizon_days if it looks ahead)"
        )
    lines.append(
        f"slices: {', '.join(task.slices) or 'none'} (metrics and gates per value; null is its own slice)"
    )
    numeric, categorical = usecase.numeric_features(), usecase.categorical_features()
    lines.append(
        f"features ({len(numeric) + len(categorical)}), as of each event, windows {list(view.windows_days)} days:"
    )
    lines.append(f"  numbers: {', '.join(numeric)}")
    if categorical:
        learned = [c for c, v in usecase.categorical_vocabularies().items() if v is None]
        lines.append(
            f"  categories (embedded): {', '.join(categorical)}"
            + (f"; learned from training data: {', '.join(learned)}" if learned else "")
        )
    nullable = sorted(usecase.nullable_features())
    if nullable:
        lines.append(f"  may be missing: {', '.join(nullable)}")
    open_columns = [c for c, s in ds.columns.items() if s.open]
    checks = []
    for name, column in ds.columns.items():
        rules = []
        if not column.nullable:
            rules.append("not null")
        if column.min is not None or column.max is not None:
            rules.append(f"in [{column.min}, {column.max}]")
        if column.allowed and not column.open:
            rules.append(f"one of {len(column.allowed)} values")
        checks.append(f"{name} ({column.type}{': ' + ', '.join(rules) if rules else ''})")
    lines.append("validation of every batch: " + "; ".join(checks))
    if open_columns:
        lines.append(f"open categories (new values accepted, one shared bucket): {', '.join(open_columns)}")
    lines.append(
        f"example data: {usecase.example.generator!r}"
        if usecase.example
        else "example data: none (ingest your own file)"
    )
    return lines
