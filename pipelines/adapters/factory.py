"""Chooses the adapter for each capability from its contract section (the only place that looks at `kind`)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlops.contract import Artifacts, AwsArtifacts, AwsTracking, LocalArtifacts, LocalTracking, Tracking
from pipelines.ports import ArtifactStore, TrackerPort


class AdapterUnavailable(Exception):
    """The contract asks for an adapter this build does not provide."""


def _unavailable(capability: str, kind: str) -> AdapterUnavailable:
    return AdapterUnavailable(f"no {kind!r} adapter for {capability} in this build of the blueprint")


def artifact_store(section: Artifacts) -> ArtifactStore:
    if isinstance(section, LocalArtifacts):
        from pipelines.adapters.local.artifacts import LocalArtifactStore

        return LocalArtifactStore(Path(section.root))
    if isinstance(section, AwsArtifacts):
        from pipelines.adapters.aws.artifacts import S3ArtifactStore

        return S3ArtifactStore(section.bucket, section.prefix, section.kms_key_id)
    raise _unavailable("artifacts", section.kind)


def tracker(section: Tracking, experiment: str) -> TrackerPort:
    """MLflow: a local SQLite backend, or SageMaker's managed server by ARN (via sagemaker-mlflow).

    $MLOPS_MLFLOW_TRACKING_URI (and $MLOPS_MLFLOW_ARTIFACT_ROOT) override the server, for an
    emulated AWS environment, which has none.
    """
    from pipelines.adapters.mlflow_tracker import MlflowTracker

    if isinstance(section, LocalTracking):
        return MlflowTracker(section.tracking_uri, experiment, section.artifact_root)
    if isinstance(section, AwsTracking):
        override = os.environ.get("MLOPS_MLFLOW_TRACKING_URI")
        if override:  # an emulated environment: its own store, and its artifacts beside it, not in cwd
            return MlflowTracker(override, experiment, os.environ.get("MLOPS_MLFLOW_ARTIFACT_ROOT"))
        return MlflowTracker(section.tracking_server_arn, experiment)
    raise _unavailable("tracking", section.kind)


def file_uri_to_path(uri: str) -> Path:
    """Path of a file:// URI (plain paths pass through)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(url2pathname(parsed.path)) if parsed.scheme else Path(uri)
    raise ValueError(f"not a local file URI: {uri}")


def read_uri(uri: str) -> bytes:
    """Bytes behind a file:// or s3:// URI (or a plain path)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return file_uri_to_path(uri).read_bytes()
    if parsed.scheme == "s3":
        from botocore.exceptions import ClientError

        from pipelines.adapters.aws.session import client

        try:
            body: bytes = (
                client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
            )
        except ClientError as exc:  # a missing object is missing, whatever the store
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(f"no object at {uri}") from exc
            raise
        return body
    raise AdapterUnavailable(f"cannot read {uri}: unsupported URI scheme {parsed.scheme!r}")
