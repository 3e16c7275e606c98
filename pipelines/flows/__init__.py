"""Prefect 3 flows: thin orchestration over the pipeline's plain-function steps."""
