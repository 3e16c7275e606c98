"""Declarative dataset spec and feature definitions.

A user swaps in their own Parquet or CSV by writing one of these YAML files and pointing
`pipeline.usecase` at it: validation suites, feature computation, model inputs and the
SageMaker feature groups are all derived from it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops.validation_errors import describe_validation_error

ColumnType = Literal["string", "category", "int", "float", "bool", "timestamp"]
AggregationFunction = Literal["count", "sum", "mean", "max"]
FeatureValueType = Literal["integral", "fractional", "string"]


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

    def categorical_vocabulary(self, column: str) -> list[str]:
        """Allowed values of a categorical column, as strings, in declared order."""
        allowed = self.columns[column].allowed
        if not allowed:
            raise UseCaseError(
                f"column {column!r} needs an `allowed` set to be used as a categorical feature"
            )
        return [str(value) for value in allowed]


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


class FeatureViewSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
    windows_days: tuple[int, ...] = Field(min_length=1)
    aggregations: tuple[AggregationSpec, ...] = Field(min_length=1)
    latest: tuple[str, ...] = Field(default=(), description="Categorical columns carried as of the event.")
    ttl_days: int = Field(
        default=90, ge=1, description="Older feature rows are not joined (as-of tolerance)."
    )

    def numeric_features(self) -> list[str]:
        return [agg.feature_name(w) for w in self.windows_days for agg in self.aggregations]

    def categorical_features(self) -> list[str]:
        return list(self.latest)

    def feature_names(self) -> list[str]:
        return self.numeric_features() + self.categorical_features()

    def value_types(self) -> dict[str, FeatureValueType]:
        """Type of each feature value, as feature stores declare them (integral, fractional, string)."""
        types: dict[str, FeatureValueType] = {}
        for window in self.windows_days:
            for agg in self.aggregations:
                types[agg.feature_name(window)] = "integral" if agg.function == "count" else "fractional"
        for column in self.latest:
            types[column] = "string"
        return types


class UseCase(_Strict):
    dataset: DatasetSpec
    features: FeatureViewSpec

    @model_validator(mode="after")
    def _features_use_dataset_columns(self) -> UseCase:
        for agg in self.features.aggregations:
            if agg.column is not None:
                spec = self.dataset.columns.get(agg.column)
                if spec is None:
                    raise ValueError(f"features.aggregations refers to undeclared column {agg.column!r}")
                if not spec.is_numeric:
                    raise ValueError(f"features.aggregations column {agg.column!r} is not numeric")
        for column in self.features.latest:
            if column not in self.dataset.columns:
                raise ValueError(f"features.latest refers to undeclared column {column!r}")
            self.dataset.categorical_vocabulary(column)
        return self


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
