"""The declarative use case: dataset spec and feature definitions, one source of truth."""

from pipelines.usecase.spec import (
    AggregationSpec,
    ColumnSpec,
    DatasetSpec,
    FeatureViewSpec,
    StatisticsSpec,
    UseCase,
    UseCaseError,
    load_usecase,
)

__all__ = [
    "AggregationSpec",
    "ColumnSpec",
    "DatasetSpec",
    "FeatureViewSpec",
    "StatisticsSpec",
    "UseCase",
    "UseCaseError",
    "load_usecase",
]
