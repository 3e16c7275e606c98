"""The platform a flow runs against: every port, wired from the contract once.

`connect(contract)` is the only place that picks adapters; flows receive a `Platform` and never
look at which environment they are in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.contract import (
    AwsCompute,
    AwsFeatureStore,
    AwsLake,
    AwsMonitoring,
    AwsQuery,
    AwsRegistry,
    AwsServing,
    Lake,
    LocalCompute,
    LocalFeatureStore,
    LocalLake,
    LocalMonitoring,
    LocalQuery,
    LocalRegistry,
    PlatformContract,
)
from pipelines.adapters.factory import AdapterUnavailable, artifact_store
from pipelines.ports import (
    ArtifactStore,
    CaptureSourcePort,
    ComputePort,
    DeployerPort,
    LakePort,
    MetricsPort,
    OnlineStorePort,
    QueryEnginePort,
    RegistryPort,
)


@dataclass(frozen=True)
class Platform:
    contract: PlatformContract
    lake: LakePort
    artifacts: ArtifactStore
    quarantine: ArtifactStore
    online_store: OnlineStorePort
    registry: RegistryPort
    compute: ComputePort
    metrics: MetricsPort
    deployer: DeployerPort
    query: QueryEnginePort
    capture: CaptureSourcePort

    @property
    def environment(self) -> str:
        return self.contract.environment

    def table(self, namespace: str, name: str) -> str:
        return f"{namespace}.{name}"


def lake_for(section: Lake, region: str | None) -> tuple[LakePort, ArtifactStore]:
    """The lake adapter of a contract's lake section and its quarantine store (also what a job
    started elsewhere, such as a batch-inference child, opens from its spec)."""
    if isinstance(section, LocalLake):
        from pyiceberg.catalog.sql import SqlCatalog

        from pipelines.adapters.iceberg_lake import IcebergLake
        from pipelines.adapters.local.artifacts import LocalArtifactStore

        catalog = SqlCatalog("local", uri=section.catalog_uri, warehouse=Path(section.warehouse).as_uri())
        return IcebergLake(catalog), LocalArtifactStore(Path(section.quarantine))
    if isinstance(section, AwsLake):
        from pipelines.adapters.aws.artifacts import S3ArtifactStore
        from pipelines.adapters.aws.lake import glue_lake

        return glue_lake(section, region), S3ArtifactStore(section.quarantine_bucket, "", section.kms_key_id)
    raise AdapterUnavailable(f"no {section.kind!r} adapter for the lake in this build")


def _online_store(contract: PlatformContract) -> OnlineStorePort:
    section = contract.feature_store
    if isinstance(section, LocalFeatureStore):
        from pipelines.adapters.local.online_store import SqliteOnlineStore

        return SqliteOnlineStore(Path(section.online_path))
    if isinstance(section, AwsFeatureStore):
        if not section.online_enabled:
            from pipelines.adapters.disabled import DisabledOnlineStore

            return DisabledOnlineStore(contract.environment)
        from pipelines.adapters.aws.feature_store import SageMakerOnlineStore

        return SageMakerOnlineStore(section.feature_group_prefix)
    raise AdapterUnavailable(f"no {section.kind!r} adapter for the feature store in this build")


def registry_for(contract: PlatformContract) -> RegistryPort:
    """The registry adapter alone (for commands that only read it: no lake, tracker or compute)."""
    section = contract.registry
    if isinstance(section, LocalRegistry):
        from pipelines.adapters.local.registry import SqliteRegistry

        return SqliteRegistry(Path(section.database), Path(section.model_store))
    if isinstance(section, AwsRegistry):
        from pipelines.adapters.aws.registry import SageMakerRegistry

        return SageMakerRegistry(section.model_package_group_prefix, artifact_store(contract.artifacts))
    raise AdapterUnavailable(f"no {section.kind!r} adapter for the registry in this build")


def _compute(contract: PlatformContract) -> ComputePort:
    if isinstance(contract.compute, LocalCompute):
        from pipelines.adapters.local.compute import InProcessCompute

        return InProcessCompute()
    if isinstance(contract.compute, AwsCompute):
        from pipelines.adapters.aws.batch import BatchCompute

        return BatchCompute(
            contract.compute.gpu_job_queue,
            contract.compute.training_job_definition,
            metrics=_metrics(contract),
            distributed_queue=contract.compute.distributed_job_queue,
            distributed_definition=contract.compute.distributed_job_definition,
            array_queue=contract.compute.cpu_job_queue if contract.compute.fanout_job_definition else None,
            array_definition=contract.compute.fanout_job_definition,
        )
    raise AdapterUnavailable(f"no {contract.compute.kind!r} adapter for compute in this build")


def _metrics(contract: PlatformContract) -> MetricsPort:
    section = contract.monitoring
    if isinstance(section, LocalMonitoring):
        from pipelines.adapters.local.metrics import SqliteMetrics

        return SqliteMetrics(Path(section.metrics_database), section.namespace)
    if isinstance(section, AwsMonitoring):
        from pipelines.adapters.aws.metrics import CloudWatchMetrics

        return CloudWatchMetrics(section.namespace)
    raise AdapterUnavailable(f"no {section.kind!r} adapter for metrics in this build")


def _deployer(contract: PlatformContract) -> DeployerPort:
    if isinstance(contract.serving, AwsServing):
        from pipelines.adapters.aws.endpoint import SageMakerDeployer

        alarms = contract.monitoring.alarm_names if isinstance(contract.monitoring, AwsMonitoring) else {}
        rollback_on = [alarms[k] for k in ("endpoint_5xx_rate", "endpoint_p99_latency") if k in alarms]
        return SageMakerDeployer(contract.serving, rollback_on, contract.environment)
    from pipelines.deployment.guarded import LocalDeployer

    return LocalDeployer()


def _capture(contract: PlatformContract, lake: LakePort) -> CaptureSourcePort:
    if isinstance(contract.serving, AwsServing):
        from pipelines.adapters.aws.capture import SageMakerCaptureLoader

        return SageMakerCaptureLoader(contract.serving, lake, region=contract.region)
    from pipelines.adapters.local.capture import EndpointCommitsCapture

    return EndpointCommitsCapture()


def _query(contract: PlatformContract, lake: LakePort) -> QueryEnginePort:
    section = contract.query
    if isinstance(section, LocalQuery):
        from pipelines.adapters.local.query import DuckDBQueryEngine

        return DuckDBQueryEngine(lake, memory_limit=section.memory_limit)
    if isinstance(section, AwsQuery) and isinstance(contract.lake, AwsLake):
        from pipelines.adapters.aws.athena import AthenaQueryEngine
        from pipelines.adapters.aws.session import client

        return AthenaQueryEngine(
            client("athena", contract.region),
            client("s3", contract.region),
            section.workgroup,
            contract.lake.glue_database,
            section.results_location,
        )
    raise AdapterUnavailable(
        f"no {section.kind!r} query engine for a {contract.lake.kind!r} lake in this build"
    )


def connect(contract: PlatformContract) -> Platform:
    """Build every port's adapter from the contract."""
    lake, quarantine = lake_for(contract.lake, contract.region)
    return Platform(
        contract=contract,
        lake=lake,
        artifacts=artifact_store(contract.artifacts),
        quarantine=quarantine,
        online_store=_online_store(contract),
        registry=registry_for(contract),
        compute=_compute(contract),
        metrics=_metrics(contract),
        deployer=_deployer(contract),
        query=_query(contract, lake),
        capture=_capture(contract, lake),
    )
