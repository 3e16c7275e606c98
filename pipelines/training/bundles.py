"""Model bundles by URI: a registry version's or a run's model directory (file:// locally, s3:// in AWS)."""

from __future__ import annotations

from models.bundle import BUNDLE_FILES, ModelBundle
from pipelines.adapters.factory import read_uri


def bundle_files(uri: str) -> dict[str, bytes]:
    """The files of the model bundle in a directory URI."""
    return {name: read_uri(f"{uri.rstrip('/')}/{name}") for name in BUNDLE_FILES}


def load_bundle(uri: str) -> ModelBundle:
    """A model bundle from a directory URI."""
    return ModelBundle.from_files(bundle_files(uri))
