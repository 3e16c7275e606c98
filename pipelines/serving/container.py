"""The serving container's app: the model SageMaker mounts at /opt/ml/model, on SageMaker's contract.

The endpoint runs with network isolation, so requests carry their features (no online store) and
SageMaker's own data capture records traffic. The deployer names the environment and the model
version in the container's environment; the environment's settings name the use case.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from mlops.settings import load_settings
from pipelines.onnx_model import load_for_scoring
from pipelines.serving.app import Variant, VariantRouter, create_app
from pipelines.serving.handler import InferenceHandler
from pipelines.usecase import load_usecase

MODEL_DIR_ENV, DEFAULT_MODEL_DIR = "SM_MODEL_DIR", "/opt/ml/model"
ENVIRONMENT_ENV, VERSION_ENV = "MLOPS_ENVIRONMENT", "MLOPS_MODEL_VERSION"


def model_dir() -> Path:
    """Where SageMaker put the model artifacts (overridable for tests and local runs)."""
    return Path(os.environ.get(MODEL_DIR_ENV, DEFAULT_MODEL_DIR))


def require_model(directory: Path) -> None:
    """Raise FileNotFoundError naming `directory` when no model is mounted there."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no model at {directory}: SageMaker mounts the model data there")


def container_app(directory: Path, environment: str) -> FastAPI:
    """One variant serving the bundle in `directory` with `environment`'s use case."""
    require_model(directory)
    usecase = load_usecase(load_settings(environment).pipeline.usecase_path())
    version = os.environ.get(VERSION_ENV)
    bundle, scorer = load_for_scoring(directory.as_uri())
    handler = InferenceHandler(bundle, usecase, scorer=scorer)
    name = f"v{version}" if version else "model"
    return create_app(VariantRouter([Variant(name, handler, version=str(version or ""))]))


def worker_app() -> FastAPI:
    """`container_app` in a worker process, from the environment `mlops container serve` set."""
    return container_app(model_dir(), os.environ[ENVIRONMENT_ENV])
