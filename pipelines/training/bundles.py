"""Model bundles by URI: a registry version's or a run's model directory (file:// locally, s3:// in AWS)."""

from __future__ import annotations

from models.bundle import BUNDLE_FILES, ModelBundle
from pipelines.adapters.factory import read_uri

# The model as data (pipelines/onnx_model.py), in bundles trained since the export exists.
MODEL_AS_DATA_FILES = ("model.onnx", "model.schema.json")


def bundle_files(uri: str, with_model_as_data: bool = False) -> dict[str, bytes]:
    """The files of the model bundle in a directory URI, and its ONNX files when asked and present."""
    base = uri.rstrip("/")
    files = {name: read_uri(f"{base}/{name}") for name in BUNDLE_FILES}
    for name in MODEL_AS_DATA_FILES if with_model_as_data else ():
        try:
            files[name] = read_uri(f"{base}/{name}")
        except FileNotFoundError:
            continue
    return files


def load_bundle(uri: str) -> ModelBundle:
    """A model bundle from a directory URI."""
    return ModelBundle.from_files(bundle_files(uri))
