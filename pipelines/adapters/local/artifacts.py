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
        target, tmp = self._staging(key)
        tmp.write_bytes(data)
        tmp.replace(target)
        return target.as_uri()

    def put_file(self, key: str, path: Path) -> str:
        target, tmp = self._staging(key)
        shutil.copyfile(path, tmp)  # streamed: a split file is not read into memory
        tmp.replace(target)
        return target.as_uri()

    def _staging(self, key: str) -> tuple[Path, Path]:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target, target.with_name(f".{target.name}.{os.getpid()}.tmp")

    def put_tree(self, prefix: str, directory: Path) -> str:
        target = self.path(prefix)
        if target != directory.resolve():
            shutil.copytree(directory, target, dirs_exist_ok=True)
        return target.as_uri()

    def _existing(self, key: str) -> Path:
        target = self.path(key)
        if not target.is_file():
            raise KeyError(f"artifact {key!r} not found under {self.root}")
        return target

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def get_file(self, key: str, path: Path) -> Path:
        # A copy, not a link: whoever holds the file may change it without changing the artifact.
        shutil.copyfile(self._existing(key), path)
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
