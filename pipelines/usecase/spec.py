"""Declarative use case: the dataset, its features and the task the model learns.

A user swaps in their own Parquet or CSV by writing one of these YAML files and pointing
`pipeline.usecase` at it: validation suites, feature computation, model inputs, the loss and
metrics, slices, the served prediction's name and the SageMaker feature groups all derive from it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops.validation_errors import describe_validation_error
from pipelines.usecase.sweep import SweepSpec

ColumnType = Literal["string", "category", "int", "float", "bool", "timestamp"]
AggregationFunction = Literal["count", "sum", "mean", "max"]
FeatureValueType = Literal["integral", "fractional", "string"]
TaskType = Literal["binary", "regression"]
_SLICEABLE = ("string", "category", "int", "bool")


class UseCaseError(Exception):
    """The use-case file is missing or malformed; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str | int, ...] | None = None
    open: bool = Field(
        default=False,
        description="Category with an open set: unseen values are accepted and share one 'other' bucket.",
    )
    # Timestamps: absolute bounds, and how far past the time of ingest a value may lie.
    earliest: datetime | None = None
    latest: datetime | None = None
    max_days_ahead: float | None = Field(default=None, ge=0)
    description: str = ""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        time_bounds = (self.earliest, self.latest, self.max_days_ahead)
        if self.type == "timestamp" and (self.min is not None or self.max is not None):
            raise ValueError("a timestamp is bounded by earliest, latest and max_days_ahead, not min and max")
        if self.type != "timestamp" and any(b is not None for b in time_bounds):
            raise ValueError("earliest, latest and max_days_ahead bound timestamp columns only")
        if self.earliest and self.latest and self.earliest > self.latest:
            raise ValueError(f"earliest ({self.earliest}) is after latest ({self.latest})")
        if self.open and self.type not in ("category", "string"):
            raise ValueError(f"open applies to category and string columns, not {self.type}")
        return self

    def time_bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The (earliest, latest) a timestamp may take for a batch ingested at `now` (UTC)."""
        latest = self.latest
        if self.max_days_ahead is not None:
            ahead = now + timedelta(days=self.max_days_ahead)
            latest = min(latest, ahead) if latest else ahead
        return _utc(self.earliest), _utc(latest)

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "float")

    @property
    def is_categorical(self) -> bool:
        """Encoded as a category (an embedding), not as a number."""
        return self.type in ("category", "string")


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class StatisticsSpec(_Strict):
    min_rows: int = Field(default=1, ge=1, description="An empty batch is always rejected.")
    max_rows: int | None = None
    mean_between: dict[str, tuple[float, float]] = Field(default_factory=dict)
    max_null_fraction: dict[str, float] = Field(default_factory=dict)


class DatasetSpec(_Strict):
    name: str
    entity_key: str
    event_time: str
    label: str
    primary_key: tuple[str, ...]
    columns: dict[str, ColumnSpec]
    statistics: StatisticsSpec = StatisticsSpec()

    @model_validator(mode="after")
    def _roles_are_columns(self) -> DatasetSpec:
        named = {"entity_key": [self.entity_key], "event_time": [self.event_time], "label": [self.label]}
        named["primary_key"] = list(self.primary_key)
        for role, columns in named.items():
            for column in columns:
                if column not in self.columns:
                    raise ValueError(f"{role} column {column!r} is not declared under columns")
        if self.columns[self.event_time].type != "timestamp":
            raise ValueError(f"event_time column {self.event_time!r} must have type timestamp")
        for column in (*self.statistics.mean_between, *self.statistics.max_null_fraction):
            if column not in self.columns:
                raise ValueError(f"statistics refer to undeclared column {column!r}")
        return self

    def categorical_vocabulary(self, column: str) -> list[str] | None:
        """Allowed values of a categorical column, as strings, in declared order.

        None for an open category without a declared set: the encoder learns its vocabulary from
        the training split, and every other value shares the unknown bucket.
        """
        spec = self.columns[column]
        if not spec.allowed:
            if spec.open:
                return None
            raise UseCaseError(
                f"column {column!r} needs an `allowed` set (or `open: true`) to be used as a categorical feature"
            )
        return [str(value) for value in spec.allowed]


class AggregationSpec(_Strict):
    function: AggregationFunction
    column: str | None = Field(default=None, description="None only for count (counts events).")

    @model_validator(mode="after")
    def _column_needed(self) -> AggregationSpec:
        if self.function != "count" and self.column is None:
            raise ValueError(f"aggregation {self.function!r} needs a column")
        return self

    def feature_name(self, window_days: int) -> str:
        base = "event_count" if self.function == "count" else f"{self.column}_{self.function}"
        return f"{base}_{window_days}d"


class LagSpec(_Strict):
    """A numeric column's value `periods` events back for the same entity, and optionally the change."""

    column: str
    periods: tuple[int, ...] = Field(default=(1,), min_length=1)
    difference: bool = Field(default=False, description="Also the change since each lag.")

    def feature_names(self) -> list[str]:
        names = []
        for period in self.periods:
            names.append(f"{self.column}_lag{period}")
            if self.difference:
                names.append(f"{self.column}_diff{period}")
        return names


class CategoryCountSpec(_Strict):
    """How many of the entity's events in each window had each listed value of a categorical column."""

    column: str
    values: tuple[str, ...] = Field(min_length=1)

    def feature_name(self, value: str, window_days: int) -> str:
        slug = "".join(ch if ch.isalnum() else "_" for ch in value.lower())
        return f"{self.column}_{slug}_count_{window_days}d"


class FeatureViewSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
    windows_days: tuple[int, ...] = Field(min_length=1)
    aggregations: tuple[AggregationSpec, ...] = Field(default=())
    latest: tuple[str, ...] = Field(
        default=(), description="Columns carried as of the event (categories, numbers, booleans)."
    )
    lags: tuple[LagSpec, ...] = ()
    category_counts: tuple[CategoryCountSpec, ...] = ()
    ttl_days: int = Field(
        default=90, ge=1, description="Older feature rows are not joined (as-of tolerance)."
    )

    def window_features(self) -> list[str]:
        return [agg.feature_name(w) for w in self.windows_days for agg in self.aggregations]

    def count_features(self) -> list[str]:
        return [
            spec.feature_name(value, window)
            for spec in self.category_counts
            for value in spec.values
            for window in self.windows_days
        ]

    def lag_features(self) -> list[str]:
        return [name for lag in self.lags for name in lag.feature_names()]


class TaskSpec(_Strict):
    """What the model learns and how its answer is named; the single source of truth for the task."""

    type: TaskType = "binary"
    model_name: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{1,40}$",
        description="Registry name; default: the dataset name with dashes, plus -model.",
    )
    prediction: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="Field of the served answer; default: <label>_probability or <label>_prediction.",
    )
    slices: tuple[str, ...] = Field(
        default=(), description="Columns whose values get their own metrics and gates (null is a slice)."
    )
    label_horizon_days: float = Field(
        default=0,
        ge=0,
        description="The label looks this far into the entity's future: newer rows are not yet labelled "
        "and are left out of training.",
    )


class ExampleDataSpec(_Strict):
    """Where `mlops data generate` and `mlops demo` get example data for this use case."""

    generator: str = Field(description="A generator registered in pipelines.datagen.")
    rows: int | None = Field(default=None, ge=1_000, description="Demo size for this use case.")


class UseCase(_Strict):
    dataset: DatasetSpec
    features: FeatureViewSpec
    task: TaskSpec = TaskSpec()
    example: ExampleDataSpec | None = None
    sweep: SweepSpec | None = None

    @model_validator(mode="after")
    def _features_use_dataset_columns(self) -> UseCase:
        view, columns = self.features, self.dataset.columns

        def declared(where: str, column: str) -> ColumnSpec:
            if column not in columns:
                raise ValueError(f"{where} refers to undeclared column {column!r}")
            if column == self.dataset.label:
                raise ValueError(f"{where} uses the label {column!r}: a feature must not see the answer")
            return columns[column]

        for agg in view.aggregations:
            if agg.column is not None and declared("features.aggregations", agg.column).type not in (
                "int",
                "float",
                "bool",
            ):
                raise ValueError(f"features.aggregations column {agg.column!r} is not numeric or bool")
        for column in view.latest:
            spec = declared("features.latest", column)
            if spec.type == "timestamp":
                raise ValueError(f"features.latest column {column!r} is a timestamp, not a feature value")
            if spec.is_categorical:
                self.dataset.categorical_vocabulary(column)
        for lag in view.lags:
            if declared("features.lags", lag.column).type not in ("int", "float", "bool"):
                raise ValueError(f"features.lags column {lag.column!r} is not numeric")
        for counted in view.category_counts:
            if not declared("features.category_counts", counted.column).is_categorical:
                raise ValueError(f"features.category_counts column {counted.column!r} is not a category")
        names = self.feature_names()
        if not names:
            raise ValueError("features define no feature: add aggregations, latest, lags or category_counts")
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise ValueError(f"features produce the name(s) {sorted(duplicated)} twice")
        self._check_task()
        return self

    def _check_task(self) -> None:
        label_name = self.dataset.label
        label = self.dataset.columns[label_name]
        if label.nullable:
            raise ValueError(f"label {label_name!r} is nullable: every training row needs its answer")
        if self.task.type == "binary":
            allowed = {int(v) for v in label.allowed or () if isinstance(v, int)}
            if label.type != "bool" and not (label.type == "int" and allowed == {0, 1}):
                raise ValueError(
                    f"task.type binary needs label {label_name!r} of type bool, or int with allowed [0, 1]; "
                    f"it is {label.type}{f' with allowed {list(label.allowed)}' if label.allowed else ''} "
                    "(a numeric target is task.type: regression; text labels must be mapped to 0/1)"
                )
        elif not label.is_numeric:
            raise ValueError(f"task.type regression needs a numeric label; {label_name!r} is {label.type}")
        for column in self.task.slices:
            if column not in self.dataset.columns:
                raise ValueError(f"task.slices refers to undeclared column {column!r}")
            if self.dataset.columns[column].type not in _SLICEABLE:
                raise ValueError(
                    f"task.slices column {column!r} is {self.dataset.columns[column].type}: "
                    f"slice by a column of type {', '.join(_SLICEABLE)}"
                )
        if self.sweep is not None:
            self._check_sweep(self.sweep)
        if self.task.prediction in (*self.dataset.columns, *self.feature_names()):
            raise ValueError(f"task.prediction {self.task.prediction!r} is already a column or feature name")

    def _check_sweep(self, sweep: SweepSpec) -> None:
        column = self.dataset.columns.get(sweep.segment)
        if column is None or not column.is_categorical:
            raise ValueError(f"sweep.segment {sweep.segment!r} is not a categorical column of the dataset")
        if sweep.segment not in (*self.features.latest, *self.task.slices):
            raise ValueError(
                f"sweep.segment {sweep.segment!r} must reach the training set: add it to features.latest "
                "or task.slices"
            )

    @property
    def model_name(self) -> str:
        """The registry name of this use case's model (task.model_name, or derived from the dataset)."""
        if self.task.model_name:
            return self.task.model_name
        base = "".join(ch if ch.isalnum() else "-" for ch in self.dataset.name.lower()).strip("-")
        return f"{base[:34] or 'usecase'}-model"

    @property
    def prediction_field(self) -> str:
        """The name of the served answer."""
        if self.task.prediction:
            return self.task.prediction
        suffix = "probability" if self.task.type == "binary" else "prediction"
        return f"{self.dataset.label}_{suffix}"

    def numeric_features(self) -> list[str]:
        """Features fed to the network as numbers, in a stable order."""
        view, columns = self.features, self.dataset.columns
        latest = [c for c in view.latest if not columns[c].is_categorical]
        return [*view.window_features(), *view.count_features(), *latest, *view.lag_features()]

    def categorical_features(self) -> list[str]:
        """Features fed to the network through an embedding."""
        return [c for c in self.features.latest if self.dataset.columns[c].is_categorical]

    def feature_names(self) -> list[str]:
        return self.numeric_features() + self.categorical_features()

    def categorical_vocabularies(self) -> dict[str, list[str] | None]:
        """Vocabulary of each categorical feature (None: learned from the training split)."""
        return {c: self.dataset.categorical_vocabulary(c) for c in self.categorical_features()}

    def nullable_features(self) -> set[str]:
        """Features that may be missing in a row: lags before enough history, latest of nullable columns."""
        nullable = {c for c in self.features.latest if self.dataset.columns[c].nullable}
        return nullable | set(self.features.lag_features())

    def non_negative_features(self) -> set[str]:
        """Features that cannot be negative because their source cannot."""
        columns, view = self.dataset.columns, self.features

        def non_negative(column: str | None) -> bool:
            spec = columns.get(column or "")
            return spec is not None and (spec.type == "bool" or (spec.min is not None and spec.min >= 0))

        found = set(view.count_features())
        for agg in view.aggregations:
            if agg.function == "count" or non_negative(agg.column):
                found |= {agg.feature_name(w) for w in view.windows_days}
        found |= {c for c in view.latest if not columns[c].is_categorical and non_negative(c)}
        found |= {
            f"{lag.column}_lag{p}" for lag in view.lags if non_negative(lag.column) for p in lag.periods
        }
        return found

    def value_types(self) -> dict[str, FeatureValueType]:
        """Type of each feature value, as feature stores declare them (integral, fractional, string)."""
        view = self.features
        types: dict[str, FeatureValueType] = {}
        for window in view.windows_days:
            for agg in view.aggregations:
                types[agg.feature_name(window)] = "integral" if agg.function == "count" else "fractional"
        for name in view.count_features():
            types[name] = "integral"
        for column in view.latest:
            types[column] = "string" if self.dataset.columns[column].is_categorical else "fractional"
        for name in view.lag_features():
            types[name] = "fractional"
        return types

    def slice_columns(self) -> list[str]:
        return list(self.task.slices)

    def signature(self) -> str:
        """What a model of this use case takes and answers: two models compare only if these agree."""
        identity = {
            "dataset": self.dataset.name,
            "label": self.dataset.label,
            "task": self.task.type,
            "features": self.feature_names(),
            "entity_key": self.dataset.entity_key,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def load_usecase(path: Path) -> UseCase:
    """Load and validate a use-case YAML file."""
    if not path.exists():
        raise UseCaseError(f"use-case spec not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return UseCase.model_validate(raw)
    except yaml.YAMLError as exc:
        raise UseCaseError(f"{path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise UseCaseError(describe_validation_error(exc, f"invalid use-case spec in {path}")) from exc
