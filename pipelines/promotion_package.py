"""The promotion package: one approved model version as a directory that can cross accounts.

Layout: `manifest.json` (the version record, who exported it, a SHA-256 per file) and `model/`
(the bundle files). The source environment's credentials write it, the target's read it, so in
CI the package travels as a workflow artifact and no job ever holds credentials for two accounts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.validation_errors import describe_validation_error

MANIFEST_FILE = "manifest.json"
MODEL_DIR = "model"
PACKAGE_FORMAT: Literal[1] = 1


class InvalidPackage(Exception):
    """The directory is not a complete, unaltered promotion package."""


class PackagedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class PromotionManifest(BaseModel):
    """What was approved where, and by whom it was packaged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = PACKAGE_FORMAT
    model_name: str = Field(min_length=1)
    source_environment: str = Field(min_length=1)
    source_version: int = Field(ge=1)
    run_key: str = Field(min_length=1)
    status: Literal["Approved"]
    status_reason: str = ""
    source_artifact_uri: str
    metrics: dict[str, float]
    parameters: dict[str, Any]
    lineage: dict[str, Any]
    files: tuple[PackagedFile, ...] = Field(min_length=1)
    exported_by: str
    exported_at: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_package(
    directory: Path, manifest_fields: dict[str, Any], files: dict[str, bytes]
) -> PromotionManifest:
    """Write the bundle files, then the manifest (last, so a half-written package has none)."""
    model_dir = directory / MODEL_DIR
    (directory / MANIFEST_FILE).unlink(missing_ok=True)
    if model_dir.exists():
        shutil.rmtree(model_dir)  # a previous export's files would not match the new manifest
    model_dir.mkdir(parents=True)
    for name, data in files.items():
        (model_dir / name).write_bytes(data)
    manifest = PromotionManifest(
        **manifest_fields,
        files=tuple(
            PackagedFile(name=name, sha256=sha256(data), size=len(data)) for name, data in files.items()
        ),
    )
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    return manifest


def read_package(directory: Path) -> tuple[PromotionManifest, Path]:
    """The manifest and the verified model directory; raises InvalidPackage naming what is wrong."""
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise InvalidPackage(f"{directory} is not a promotion package: {MANIFEST_FILE} is missing")
    try:
        manifest = PromotionManifest.model_validate(json.loads(manifest_path.read_text()))
    except json.JSONDecodeError as exc:
        raise InvalidPackage(f"{manifest_path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise InvalidPackage(
            describe_validation_error(exc, f"invalid promotion manifest {manifest_path}")
        ) from exc
    model_dir = directory / MODEL_DIR
    for entry in manifest.files:
        path = model_dir / entry.name
        if not path.is_file():
            raise InvalidPackage(f"{path} is listed in the manifest but missing")
        if sha256(path.read_bytes()) != entry.sha256:
            raise InvalidPackage(
                f"{path} does not match its SHA-256 in the manifest: the package was altered"
            )
    listed = {entry.name for entry in manifest.files}
    extra = sorted(p.name for p in model_dir.iterdir() if p.name not in listed)
    if extra:
        raise InvalidPackage(f"{model_dir} holds files the manifest does not list: {', '.join(extra)}")
    return manifest, model_dir


def package_digest(manifest: PromotionManifest) -> str:
    """One checksum for the whole package (the manifest pins every file's)."""
    return sha256(manifest.model_dump_json().encode())
