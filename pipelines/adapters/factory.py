"""Chooses the adapter for each capability from its contract section (the only place that looks at `kind`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlops.contract import (
    Artifacts,
    LocalArtifacts,
    LocalTracking,
    Tracking,
)
from pipelines.ports import ArtifactStore, TrackerPort


class AdapterUnavailable(Exception):
    """The contract asks for an adapter this build does not provide."""


def _unavailable(capability: str, kind: str) -> AdapterUnavailable:
    return AdapterUnavailable(f"no {kind!r} adapter for {capability} in this build of the blueprint")


def artifact_store(section: Artifacts) -> ArtifactStore:
    if isinstance(section, LocalArtifacts):
        from pipelines.adapters.local.artifacts import LocalArtifactStore

        return LocalArtifactStore(Path(section.root))
    raise _unavailable("artifacts", section.kind)


def tracker(section: Tracking, experiment: str) -> TrackerPort:
    if isinstance(section, LocalTracking):
        from pipelines.adapters.mlflow_tracker import MlflowTracker

        return MlflowTracker(section.tracking_uri, experiment, section.artifact_root)
    raise _unavailable("tracking", section.kind)


def read_uri(uri: str) -> bytes:
    """Bytes behind a file:// URI (or a plain path)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(url2pathname(parsed.path) if parsed.scheme else uri).read_bytes()
    raise AdapterUnavailable(f"cannot read {uri}: unsupported URI scheme {parsed.scheme!r}")
