"""Prefect flows and the platform ports/adapters they run against.

Kept import-light: `pipelines.usecase` (dataset spec and feature definitions) is imported by infra too.
"""
