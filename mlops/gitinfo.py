"""The code version recorded in every model's lineage."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from mlops.paths import project_root


@dataclass(frozen=True)
class CodeVersion:
    commit: str
    dirty: bool


def code_version() -> CodeVersion:
    """HEAD's commit and whether tracked files differ from it ("unknown" outside a git checkout)."""
    root = project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return CodeVersion("unknown", False)
    return CodeVersion(commit, bool(status.strip()))
