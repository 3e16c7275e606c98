"""The declarative use case: dataset spec and feature definitions, one source of truth."""

from pipelines.usecase.spec import (
    AggregationSpec,
    CategoryCountSpec,
    ColumnSpec,
    DatasetSpec,
    ExampleDataSpec,
    FeatureViewSpec,
    LagSpec,
    StatisticsSpec,
    TaskSpec,
    UseCase,
    UseCaseError,
    load_usecase,
)

__all__ = [
    "AggregationSpec",
    "CategoryCountSpec",
    "ColumnSpec",
    "DatasetSpec",
    "ExampleDataSpec",
    "FeatureViewSpec",
    "LagSpec",
    "StatisticsSpec",
    "TaskSpec",
    "UseCase",
    "UseCaseError",
    "load_usecase",
]
