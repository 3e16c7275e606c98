"""Where the project lives: the repository root and its environments directory."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Where the platform image (Dockerfile) holds the project; flow runs on Kubernetes start there.
IMAGE_PROJECT_ROOT = "/opt/mlops"


def project_root() -> Path:
    """The blueprint's root: $MLOPS_PROJECT_ROOT, else the nearest parent of cwd with `environments/`."""
    override = os.environ.get("MLOPS_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "environments").is_dir() and (candidate / "usecases").is_dir():
            return candidate
    return PACKAGE_ROOT


def environments_dir() -> Path:
    """Directory of the per-environment settings files."""
    return project_root() / "environments"
