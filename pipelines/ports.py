"""Ports: the small interfaces flows are written against.

Each port has a `local` adapter (files, SQLite, local processes) and an `aws` adapter, chosen
once from the platform contract by `pipelines.platform.connect`. Flows never branch on the
environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: commands that never touch a table should not load pandas (~0.7 s)
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class Snapshot:
    """One committed version of a lake table (`expired`: retention let it go; only its record is left)."""

    table: str
    snapshot_id: int
    committed_at: datetime
    properties: dict[str, str] = field(default_factory=dict)
    expired: bool = False


@dataclass(frozen=True)
class RowFilter:
    """Which rows to read, pushed down to the table format (files whose column statistics cannot
    match are skipped; the rest are filtered while read): every condition must hold."""

    any_of: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # column -> values it may take
    at_least: dict[str, Any] = field(default_factory=dict)  # column -> inclusive lower bound


class QueryEnginePort(Protocol):
    """Runs SQL over one lake table snapshot where the data is: an embedded engine, or Athena."""

    @property
    def dialect(self) -> str: ...  # the SQL dialect it reads (sqlglot's name: duckdb, trino)

    def query(self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int) -> pa.Table:
        """The result of `sql`, whose relation `source` is `columns` of `table` at `snapshot_id`."""
        ...

    def stream(
        self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int
    ) -> pa.RecordBatchReader:
        """The same result as `query`, as record batches read as they are consumed (flat memory)."""
        ...


class LakePort(Protocol):
    """Versioned tables (Iceberg): every write is a snapshot whose id is recorded as lineage."""

    def append(self, table: str, data: pa.Table, properties: dict[str, str]) -> Snapshot: ...

    def overwrite(self, table: str, data: pa.Table, properties: dict[str, str]) -> Snapshot: ...

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        snapshot_id: int | None = None,
        where: RowFilter | None = None,
    ) -> pa.Table: ...

    def scan(
        self, table: str, columns: Sequence[str] | None = None, snapshot_id: int | None = None
    ) -> pa.RecordBatchReader:
        """The rows of a snapshot as a stream of record batches: memory stays flat as the table grows."""
        ...

    def append_batches(self, table: str, batches: Iterable[pa.Table], properties: dict[str, str]) -> Snapshot:
        """Append a stream of batches as one snapshot: each batch goes to a data file as it arrives and
        the snapshot is committed after the last one, so a writer killed half-way commits nothing."""
        ...

    def overwrite_batches(
        self, table: str, batches: Iterable[pa.Table | pa.RecordBatch], properties: dict[str, str]
    ) -> Snapshot:
        """Replace the table's rows with a stream of batches in one snapshot, written as `append_batches`
        writes them: a writer killed half-way leaves the table exactly as it was."""
        ...

    def appended_since(
        self, table: str, since_snapshot_id: int, snapshot_id: int, columns: Sequence[str] | None = None
    ) -> pa.Table | None:
        """The rows `snapshot_id` holds that `since_snapshot_id` did not, when every commit between
        them only added files; None otherwise (a rewrite or delete, or an unrelated snapshot)."""
        ...

    def schema(self, table: str) -> pa.Schema: ...

    def current_snapshot(self, table: str) -> Snapshot | None: ...

    def snapshots(self, table: str) -> list[Snapshot]:
        """The snapshots that can still be read (time travel), oldest first."""
        ...

    def history(self, table: str) -> list[Snapshot]:
        """Every commit's record, oldest first, expired ones included: what a run looks up to know
        whether it already did its work."""
        ...

    def retain(self, table: str, snapshots: Mapping[str, int]) -> list[str]:
        """Keep snapshots readable however old they get (models' training data, for instance), each
        under its reason; returns the reasons whose snapshot had already expired."""
        ...


class ArtifactStore(Protocol):
    """A key-value store of files (reports, run specs, checkpoints, model bundles)."""

    def put_bytes(self, key: str, data: bytes) -> str: ...

    def put_file(self, key: str, path: Path) -> str: ...

    def put_tree(self, prefix: str, directory: Path) -> str: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, path: Path) -> Path:
        """Copy an artifact to a local file, streamed (a training split may be larger than memory)."""
        ...

    def exists(self, key: str) -> bool: ...

    def uri(self, key: str) -> str: ...


class OnlineStorePort(Protocol):
    """Latest feature values per entity, for low-latency lookup at inference time."""

    def write(self, view: str, rows: pd.DataFrame, entity_key: str) -> int: ...

    def read(self, view: str, keys: Sequence[str], entity_key: str) -> pd.DataFrame: ...


class TrackerPort(Protocol):
    """Experiment tracking (MLflow locally and on SageMaker's managed MLflow)."""

    def run(self, run_name: str, run_id: str | None = None) -> AbstractContextManager[str]: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_artifact(self, path: Path) -> None: ...


class ApprovalStatus(StrEnum):
    """Model approval status, spelled as SageMaker Model Registry spells it."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


@dataclass(frozen=True)
class ModelCandidate:
    """What a training run hands to the registry."""

    model_name: str
    run_key: str
    artifact_uri: str
    metrics: dict[str, float]
    parameters: dict[str, Any]
    lineage: dict[str, Any]


@dataclass(frozen=True)
class ModelVersion:
    model_name: str
    version: int
    run_key: str
    status: ApprovalStatus
    artifact_uri: str
    metrics: dict[str, float]
    parameters: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    status_reason: str = ""


class RegistryPort(Protocol):
    """Model versions with approval status and lineage; champion = the latest approved version."""

    def register(self, candidate: ModelCandidate) -> ModelVersion: ...

    def set_status(
        self, model_name: str, version: int, status: ApprovalStatus, reason: str = ""
    ) -> ModelVersion: ...

    def get(self, model_name: str, version: int) -> ModelVersion: ...

    def versions(self, model_name: str | None = None) -> list[ModelVersion]: ...

    def champion(self, model_name: str) -> ModelVersion | None: ...


@dataclass(frozen=True)
class JobResult:
    job_id: str
    status: str
    result_uri: str


class ComputePort(Protocol):
    """Runs containerised steps from specs stored at URIs: training, and fan-outs over many items."""

    def run_training(self, spec_uri: str) -> JobResult: ...

    def run_array(self, spec_uri: str, size: int, gpu: bool = False) -> list[JobResult]:
        """Run fan-out children 0..size-1 (`python -m pipelines.fanout`); `gpu` puts them on the GPU
        queue with the training job definition."""
        ...


class DeployerPort(Protocol):
    """Puts an approved version behind the live endpoint with the guarded policy (smoke, canary, rollback)."""

    def deploy(
        self,
        candidate: ModelVersion,
        handler_for: Any,
        registry: RegistryPort,
        store: ArtifactStore,
        traffic: pd.DataFrame,
        smoke: Any,
        policy: Any = ...,
    ) -> Any: ...

    def route(self, state: Any, registry: RegistryPort, store: ArtifactStore) -> str:
        """Serve `state`'s variants (an `EndpointState`) with their weights, then record it in `store`;
        returns what now serves. Raises `ExperimentError` when the endpoint does not take it."""
        ...


@dataclass(frozen=True)
class CaptureSchema:
    """What a captured request keeps: the entity key, the model's inputs (numbers and categories)
    and the field that carries the event time the prediction is about."""

    entity_key: str
    event_time: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]


@dataclass(frozen=True)
class CaptureSync:
    """What one sync brought into the capture table: files read, rows added, records refused."""

    files: int = 0
    rows: int = 0
    rejected: int = 0
    skipped_files: int = 0  # listed but loaded by an earlier sync
    errors: list[str] = field(default_factory=list)  # one line per refused record (the first few)


class CaptureSourcePort(Protocol):
    """Brings the endpoint's captured traffic into the lake table `capture.<model>`: the local
    endpoint commits there itself; SageMaker writes JSON Lines to S3, loaded here once each."""

    def sync(self, model_name: str, schema: CaptureSchema) -> CaptureSync: ...


@dataclass(frozen=True)
class MetricDatum:
    name: str
    value: float
    dimensions: dict[str, str] = field(default_factory=dict)
    unit: str = "None"
    timestamp: datetime | None = None


class MetricsPort(Protocol):
    """Operational and model metrics (CloudWatch in AWS, SQLite locally)."""

    def put(self, data: Sequence[MetricDatum]) -> int: ...

    def query(self, name: str, dimensions: dict[str, str] | None = None) -> Iterator[MetricDatum]: ...
