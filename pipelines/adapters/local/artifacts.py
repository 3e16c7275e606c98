"""Artifact store on the local file system, with atomic writes (a killed writer leaves no half file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class LocalArtifactStore:
    """ArtifactStore rooted at a directory; keys are relative POSIX paths."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root.resolve() not in (target, *target.parents):
            raise ValueError(f"artifact key {key!r} escapes the store root")
        return target

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def put_bytes(self, key: str, data: bytes) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target.as_uri()

    def put_file(self, key: str, path: Path) -> str:
        return self.put_bytes(key, path.read_bytes())

    def put_tree(self, prefix: str, directory: Path) -> str:
        target = self.path(prefix)
        if target != directory.resolve():
            shutil.copytree(directory, target, dirs_exist_ok=True)
        return target.as_uri()

    def get_bytes(self, key: str) -> bytes:
        target = self.path(key)
        if not target.exists():
            raise KeyError(f"artifact {key!r} not found under {self.root}")
        return target.read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
