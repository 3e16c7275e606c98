"""Model registry in SQLite: versions, approval status, lineage and a champion pointer."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pipelines.adapters.factory import file_uri_to_path
from pipelines.adapters.local.sqlite import connect
from pipelines.ports import ApprovalStatus, ModelCandidate, ModelVersion

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    model_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_key TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT NOT NULL DEFAULT '',
    artifact_uri TEXT NOT NULL,
    metrics TEXT NOT NULL,
    parameters TEXT NOT NULL,
    lineage TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (model_name, version),
    UNIQUE (model_name, run_key)
);
CREATE TABLE IF NOT EXISTS champions (
    model_name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class RegistryError(Exception):
    """A registry operation was refused (unknown version, invalid transition)."""


def _row_to_version(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        model_name=row["model_name"],
        version=row["version"],
        run_key=row["run_key"],
        status=ApprovalStatus(row["status"]),
        status_reason=row["status_reason"],
        artifact_uri=row["artifact_uri"],
        metrics=json.loads(row["metrics"]),
        parameters=json.loads(row["parameters"]),
        lineage=json.loads(row["lineage"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


class SqliteRegistry:
    """RegistryPort on SQLite; bundles are copied into `model_store` so a version never changes."""

    def __init__(self, database: Path, model_store: Path) -> None:
        self.database = database
        self.model_store = model_store
        with connect(database) as conn:
            conn.executescript(_SCHEMA)

    def register(self, candidate: ModelCandidate) -> ModelVersion:
        """Create a pending version; registering the same run again returns the existing version."""
        with connect(self.database) as conn:
            conn.execute("BEGIN IMMEDIATE")
            existing = conn.execute(
                "SELECT * FROM model_versions WHERE model_name = ? AND run_key = ?",
                (candidate.model_name, candidate.run_key),
            ).fetchone()
            if existing is not None:
                return _row_to_version(existing)
            (latest,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model_name = ?",
                (candidate.model_name,),
            ).fetchone()
            version = latest + 1
            stored = self._store_bundle(candidate, version)
            conn.execute(
                "INSERT INTO model_versions VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?)",
                (
                    candidate.model_name,
                    version,
                    candidate.run_key,
                    ApprovalStatus.PENDING.value,
                    stored,
                    json.dumps(candidate.metrics, sort_keys=True),
                    json.dumps(candidate.parameters, sort_keys=True, default=str),
                    json.dumps(candidate.lineage, sort_keys=True, default=str),
                    datetime.now(UTC).isoformat(),
                ),
            )
        return self.get(candidate.model_name, version)

    def _store_bundle(self, candidate: ModelCandidate, version: int) -> str:
        source = file_uri_to_path(candidate.artifact_uri)
        if not source.is_dir():
            raise RegistryError(f"model bundle {candidate.artifact_uri} does not exist")
        target = self.model_store / candidate.model_name / f"v{version}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
        return target.as_uri()

    def set_status(
        self, model_name: str, version: int, status: ApprovalStatus, reason: str = ""
    ) -> ModelVersion:
        """Move a version to a status; approving it makes it the champion."""
        current = self.get(model_name, version)
        if current.status == status:
            return current
        now = datetime.now(UTC).isoformat()
        with connect(self.database) as conn:
            conn.execute(
                "UPDATE model_versions SET status = ?, status_reason = ? WHERE model_name = ? AND version = ?",
                (status.value, reason, model_name, version),
            )
            if status == ApprovalStatus.APPROVED:
                conn.execute(
                    """INSERT INTO champions VALUES (?, ?, ?)
                       ON CONFLICT(model_name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at
                       WHERE excluded.version >= champions.version""",
                    (model_name, version, now),
                )
            else:
                # A champion that loses its approval hands over to the latest version still approved.
                (fallback,) = conn.execute(
                    "SELECT MAX(version) FROM model_versions WHERE model_name = ? AND status = ?",
                    (model_name, ApprovalStatus.APPROVED.value),
                ).fetchone()
                if fallback is None:
                    conn.execute(
                        "DELETE FROM champions WHERE model_name = ? AND version = ?", (model_name, version)
                    )
                else:
                    conn.execute(
                        "UPDATE champions SET version = ?, updated_at = ? WHERE model_name = ? AND version = ?",
                        (fallback, now, model_name, version),
                    )
        return self.get(model_name, version)

    def get(self, model_name: str, version: int) -> ModelVersion:
        with connect(self.database) as conn:
            row = conn.execute(
                "SELECT * FROM model_versions WHERE model_name = ? AND version = ?", (model_name, version)
            ).fetchone()
        if row is None:
            raise RegistryError(f"model {model_name!r} has no version {version}")
        return _row_to_version(row)

    def versions(self, model_name: str | None = None) -> list[ModelVersion]:
        query = "SELECT * FROM model_versions"
        args: tuple[str, ...] = ()
        if model_name is not None:
            query += " WHERE model_name = ?"
            args = (model_name,)
        with connect(self.database) as conn:
            rows = conn.execute(query + " ORDER BY model_name, version", args).fetchall()
        return [_row_to_version(r) for r in rows]

    def champion(self, model_name: str) -> ModelVersion | None:
        with connect(self.database) as conn:
            row = conn.execute("SELECT version FROM champions WHERE model_name = ?", (model_name,)).fetchone()
        return self.get(model_name, row["version"]) if row is not None else None
