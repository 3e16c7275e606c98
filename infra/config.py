"""The typed stack config of one environment (`environments/Pulumi.<env>.yaml`).

Everything that differs between environments (sizes, redundancy, instance types, retention,
accounts) is a field here; the components read nothing else. A malformed config fails before any
resource is declared, with a message naming the key.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.validation_errors import describe_validation_error

CONFIG_NAMESPACE = "mlops-blueprint"
CONFIG_KEY = "platform"
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _cloudwatch_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
    return value


RetentionDays = Annotated[int, AfterValidator(_cloudwatch_retention)]


def _ipv4_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 CIDR such as 203.0.113.7/32") from None
    return str(network)


class StackConfigError(Exception):
    """The stack config is missing or malformed; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Strict):
    cidr: str = Field(pattern=r"^\d+\.\d+\.\d+\.\d+/(16|17|18|19|20)$")
    availability_zones: tuple[str, ...] = Field(min_length=2, max_length=6)
    nat_gateways: Literal["single", "per_az"] = "single"
    flow_log_retention_days: RetentionDays = 30


class KeysConfig(_Strict):
    deletion_window_days: int = Field(default=30, ge=7, le=30)


class BucketOverride(_Strict):
    """Escape hatches, off by default; the infra tests and the policy pack flag any bucket using them."""

    encryption: bool = True
    block_public_access: bool = True


class LakeConfig(_Strict):
    raw_transition_days: int = Field(default=90, ge=30)
    raw_transition_storage_class: Literal["STANDARD_IA", "GLACIER_IR", "GLACIER"] = "GLACIER_IR"
    quarantine_expiry_days: int = Field(default=30, ge=1)
    query_results_expiry_days: int = Field(default=7, ge=1)
    access_log_expiry_days: int = Field(default=365, ge=1)
    abort_multipart_days: int = Field(default=7, ge=1)
    noncurrent_version_expiry_days: int = Field(default=90, ge=1)
    force_destroy: bool = False
    bucket_overrides: dict[
        Literal["raw", "curated", "artifacts", "quarantine", "query-results"], BucketOverride
    ] = Field(default_factory=dict)


class DistributedTrainingConfig(_Strict):
    """An AWS Batch multi-node parallel job for data-parallel training across GPU machines.

    Batch runs these on on-demand EC2 only (never Spot), all nodes of one instance type, kept close
    by a cluster placement group in one Availability Zone."""

    nodes: int = Field(
        default=2, ge=2, le=64, description="Default node count; a run may ask for fewer or more."
    )
    gpus_per_node: int = Field(default=1, ge=1, description="Ranks per node, one per GPU.")
    instance_types: tuple[str, ...] = Field(
        min_length=1, description="Exact types (a family would mix GPU counts)."
    )
    max_vcpus: int = Field(ge=1)
    require_efa: bool = Field(default=False, description="Only types with an Elastic Fabric Adapter (prod).")
    memory_mib_per_node: int = Field(default=60_000, ge=1024)

    @model_validator(mode="after")
    def _types_fit(self) -> DistributedTrainingConfig:
        from infra.gpu_instances import GPU_RECORD, gpu_instances

        known = gpu_instances()
        for name in self.instance_types:
            facts = known.get(name)
            if facts is None:
                raise ValueError(
                    f"distributed.instance_types: {name!r} is not in {GPU_RECORD.name} (known: {', '.join(known)})"
                )
            if self.gpus_per_node > facts.gpus:
                raise ValueError(
                    f"distributed.gpus_per_node is {self.gpus_per_node} but {name} has {facts.gpus} GPU(s)"
                )
            if self.require_efa and not facts.efa:
                raise ValueError(f"distributed.require_efa: {name} has no Elastic Fabric Adapter")
            if self.memory_mib_per_node > facts.memory_gib * 1024 * 0.9:
                raise ValueError(
                    f"distributed.memory_mib_per_node {self.memory_mib_per_node} does not fit {name} "
                    f"({facts.memory_gib} GiB, some of it for the host)"
                )
        smallest = min(known[name].vcpus for name in self.instance_types)
        if self.max_vcpus < smallest * self.nodes:
            raise ValueError(
                f"distributed.max_vcpus {self.max_vcpus} cannot hold {self.nodes} nodes of {smallest} vCPUs"
            )
        return self

    def vcpus_per_node(self) -> int:
        from infra.gpu_instances import gpu_instances

        return min(gpu_instances()[name].vcpus for name in self.instance_types)


class ComputeConfig(_Strict):
    gpu_instance_types: tuple[str, ...] = Field(min_length=1)
    gpu_min_vcpus: int = Field(default=0, ge=0)
    gpu_max_vcpus: int = Field(ge=1)
    spot_bid_percentage: int = Field(default=100, ge=1, le=100)
    cpu_instance_types: tuple[str, ...] = ("m6i", "c6i")
    cpu_max_vcpus: int = Field(ge=1)
    training_vcpus: int = Field(default=4, ge=1)
    training_memory_mib: int = Field(default=15_000, ge=512)
    training_gpus: int = Field(default=1, ge=0)
    # Batch inference: the point-in-time join spills past pipeline.batch_inference.memory_limit, so
    # 8 GiB holds it and a chunk with room to spare at any table size.
    fanout_vcpus: int = Field(default=2, ge=1)
    fanout_memory_mib: int = Field(default=8_192, ge=512)
    job_timeout_seconds: int = Field(default=4 * 3600, ge=60)
    job_attempts: int = Field(default=3, ge=1, le=10)
    image_tag: str = Field(
        default="latest-approved",
        description="Tag of the platform image in the environment's ECR; the release workflow sets the commit.",
    )
    extra_job_actions: tuple[str, ...] = Field(
        default=(), description="More IAM actions for the training job role."
    )
    distributed: DistributedTrainingConfig | None = Field(
        default=None, description="Multi-node data-parallel training (a Batch multi-node parallel job)."
    )

    @model_validator(mode="after")
    def _sizes(self) -> ComputeConfig:
        if self.gpu_min_vcpus > self.gpu_max_vcpus:
            raise ValueError("gpu_min_vcpus is greater than gpu_max_vcpus")
        return self


class FeatureStoreConfig(_Strict):
    online_enabled: bool = False


class QueryEngineConfig(_Strict):
    """The Athena workgroup feature views run in at scale (Trino, engine v3)."""

    bytes_scanned_cutoff_gb: int = Field(
        default=1_000, ge=1, le=1_000_000, description="A query scanning more is cancelled (cost guard)."
    )


class RegistryConfig(_Strict):
    cross_account_readers: tuple[str, ...] = Field(
        default=(), description="Account ids allowed to read model packages."
    )

    @field_validator("cross_account_readers")
    @classmethod
    def _accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account in value:
            if not re.fullmatch(r"\d{12}", account):
                raise ValueError(f"{account!r} is not a 12-digit AWS account id")
        return value


class TrackingConfig(_Strict):
    server_size: Literal["Small", "Medium", "Large"] = "Small"


class MonitoringConfig(_Strict):
    log_retention_days: RetentionDays = 30
    alarm_emails: tuple[str, ...] = ()
    endpoint_5xx_rate: float = Field(default=0.01, gt=0, le=1)
    endpoint_p99_latency_ms: float = Field(default=500, gt=0)
    drift_alert_threshold: float = Field(default=0.25, gt=0)
    evaluation_periods: int = Field(default=3, ge=1)


class NodeGroupConfig(_Strict):
    instance_types: tuple[str, ...] = Field(min_length=1)
    min_size: int = Field(default=0, ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(default=1, ge=0)


class OrchestratorConfig(_Strict):
    """Prefect on EKS: a self-hosted server (Postgres on RDS) or workers against Prefect Cloud."""

    mode: Literal["self-hosted", "cloud"] = "self-hosted"
    # In EKS standard support; infra/facts/support_calendar.yaml says until when (checked by the tests).
    kubernetes_version: str = Field(default="1.35", pattern=r"^1\.\d{2}$")
    api_access_cidrs: tuple[str, ...] = Field(
        default=(),
        description="CIDRs (besides the release runner's) that may reach the cluster's public API endpoint.",
    )
    ci_runner_cidr: str | None = Field(
        default=None,
        description="The release runner's egress address (/32); the workflow sets it for the run.",
    )
    cpu_nodes: NodeGroupConfig = NodeGroupConfig(
        instance_types=("m6i.large",), min_size=1, max_size=3, desired_size=2
    )
    gpu_nodes: NodeGroupConfig | None = None
    db_instance_class: str = "db.t4g.medium"
    db_backup_days: int = Field(default=7, ge=1, le=35)
    db_multi_az: bool = False
    monitoring_stack: bool = False

    @field_validator("api_access_cidrs")
    @classmethod
    def _restricted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            _ipv4_cidr(cidr)
            if cidr.endswith("/0"):
                raise ValueError(f"{cidr!r} opens the cluster API to the whole internet")
        return value

    @field_validator("ci_runner_cidr")
    @classmethod
    def _runner(cls, value: str | None) -> str | None:
        if value is not None and not _ipv4_cidr(value).endswith("/32"):
            raise ValueError(f"{value!r} is not a single address (a.b.c.d/32)")
        return value

    def public_access_cidrs(self) -> list[str]:
        """Who reaches the public API endpoint: the listed CIDRs and this run's release runner."""
        return [*self.api_access_cidrs, *([self.ci_runner_cidr] if self.ci_runner_cidr else [])]


class StackConfig(_Strict):
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")
    owner: str = Field(min_length=1)
    cost_center: str = Field(min_length=1)
    name_suffix: str = Field(
        default="", pattern=r"^[a-z0-9-]{0,20}$", description="Makes bucket names globally unique."
    )
    network: NetworkConfig
    keys: KeysConfig = KeysConfig()
    lake: LakeConfig = LakeConfig()
    compute: ComputeConfig
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    query: QueryEngineConfig = QueryEngineConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    orchestrator: OrchestratorConfig = OrchestratorConfig()


def parse_stack_config(raw: object, source: str) -> StackConfig:
    """Validate the `mlops-blueprint:platform` object; StackConfigError lists each bad key."""
    if raw is None:
        raise StackConfigError(f"{source}: missing config key {CONFIG_NAMESPACE}:{CONFIG_KEY}")
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        message = describe_validation_error(
            exc, f"invalid stack config in {source}", f"{CONFIG_NAMESPACE}:{CONFIG_KEY}."
        )
        raise StackConfigError(message) from exc
