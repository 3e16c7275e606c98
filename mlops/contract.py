"""The platform contract: the one typed seam between infrastructure and pipelines.

Infra exports it (stack output + SSM parameter), the local bootstrap writes it as JSON,
pipelines read it at flow start. It imports neither pulumi nor prefect so that every side,
and the tests, can use it cheaply. Each capability is a discriminated union: the ``kind``
field picks the adapter family (``local`` or ``aws``) for that capability.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.validation_errors import describe_validation_error

CONTRACT_SCHEMA_VERSION = 1  # bump with a migration note when a field changes meaning


class ContractError(Exception):
    """The contract is missing or does not match the model; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- data lake -----------------------------------------------------------------------------------


class LocalLake(_Strict):
    kind: Literal["local"] = "local"
    warehouse: str = Field(description="Directory holding Iceberg data and metadata files.")
    catalog_uri: str = Field(description="SQLAlchemy URI of the SQLite Iceberg catalog.")
    quarantine: str = Field(description="Directory where rejected batches are kept with their report.")


class AwsLake(_Strict):
    kind: Literal["aws"] = "aws"
    raw_bucket: str
    curated_bucket: str
    quarantine_bucket: str
    glue_database: str
    kms_key_id: str


Lake = Annotated[LocalLake | AwsLake, Field(discriminator="kind")]


# --- artifacts (reports, checkpoints, run specs) ------------------------------------------------


class LocalArtifacts(_Strict):
    kind: Literal["local"] = "local"
    root: str


class AwsArtifacts(_Strict):
    kind: Literal["aws"] = "aws"
    bucket: str
    prefix: str = ""
    kms_key_id: str


Artifacts = Annotated[LocalArtifacts | AwsArtifacts, Field(discriminator="kind")]


# --- feature store ------------------------------------------------------------------------------


class LocalFeatureStore(_Strict):
    kind: Literal["local"] = "local"
    offline_namespace: str = "features"
    online_path: str = Field(description="SQLite file of the online key-value store.")


class AwsFeatureStore(_Strict):
    kind: Literal["aws"] = "aws"
    offline_namespace: str
    feature_group_prefix: str
    online_enabled: bool = True
    kms_key_id: str


FeatureStore = Annotated[LocalFeatureStore | AwsFeatureStore, Field(discriminator="kind")]


# --- experiment tracking ------------------------------------------------------------------------


class LocalTracking(_Strict):
    kind: Literal["local"] = "local"
    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///...).")
    artifact_root: str


class AwsTracking(_Strict):
    kind: Literal["aws"] = "aws"
    tracking_server_arn: str


Tracking = Annotated[LocalTracking | AwsTracking, Field(discriminator="kind")]


# --- model registry -----------------------------------------------------------------------------


class LocalRegistry(_Strict):
    kind: Literal["local"] = "local"
    database: str = Field(description="SQLite file of the registry.")
    model_store: str = Field(description="Directory where registered model bundles are kept.")


class AwsRegistry(_Strict):
    kind: Literal["aws"] = "aws"
    model_package_group_prefix: str


Registry = Annotated[LocalRegistry | AwsRegistry, Field(discriminator="kind")]


# --- compute ------------------------------------------------------------------------------------


class LocalCompute(_Strict):
    kind: Literal["local"] = "local"


class AwsCompute(_Strict):
    kind: Literal["aws"] = "aws"
    gpu_job_queue: str
    cpu_job_queue: str
    training_job_definition: str
    distributed_job_queue: str | None = Field(
        default=None, description="Queue of multi-node data-parallel training (absent: not provisioned)."
    )
    distributed_job_definition: str | None = None
    fanout_job_definition: str | None = Field(
        default=None,
        description="CPU job definition of fan-outs (batch inference) on the CPU queue (absent: the training one).",
    )
    image_uri: str = Field(
        description="The platform image (ECR, tagged with the release): Batch jobs and Kubernetes flow runs use it."
    )


Compute = Annotated[LocalCompute | AwsCompute, Field(discriminator="kind")]


# --- monitoring ---------------------------------------------------------------------------------


class LocalMonitoring(_Strict):
    kind: Literal["local"] = "local"
    metrics_database: str
    namespace: str = "mlops"


class AwsMonitoring(_Strict):
    kind: Literal["aws"] = "aws"
    namespace: str
    alarm_names: dict[str, str] = Field(default_factory=dict)
    sns_topic_arn: str


Monitoring = Annotated[LocalMonitoring | AwsMonitoring, Field(discriminator="kind")]


# --- serving -----------------------------------------------------------------------------------


class LocalServing(_Strict):
    kind: Literal["local"] = "local"
    host: str = "127.0.0.1"
    port: int = 8080


class AwsServing(_Strict):
    kind: Literal["aws"] = "aws"
    endpoint_name: str
    execution_role_arn: str
    image_uri: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    data_capture_uri: str
    kms_key_id: str


Serving = Annotated[LocalServing | AwsServing, Field(discriminator="kind")]


# --- query engine -------------------------------------------------------------------------------


class LocalQuery(_Strict):
    kind: Literal["local"] = "local"
    memory_limit: str = Field(
        default="1GB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="DuckDB's memory limit; past it, work spills to disk.",
    )


class AwsQuery(_Strict):
    kind: Literal["aws"] = "aws"
    workgroup: str = Field(min_length=1, max_length=128, description="The Athena workgroup (engine v3).")
    results_location: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="Where query results are unloaded (the workgroup's results bucket).",
    )


Query = Annotated[LocalQuery | AwsQuery, Field(discriminator="kind")]


# --- orchestrator -------------------------------------------------------------------------------


class Orchestrator(_Strict):
    work_pool: str
    api_url: str | None = Field(default=None, description="None: Prefect's ephemeral API in-process.")
    cluster_name: str | None = Field(
        default=None, description="The EKS cluster the server and workers run in (AWS environments)."
    )


class PlatformContract(_Strict):
    """Everything a flow needs to know about the environment it runs in."""

    schema_version: Literal[1] = 1
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    region: str | None = None
    lake: Lake
    artifacts: Artifacts
    feature_store: FeatureStore
    tracking: Tracking
    registry: Registry
    compute: Compute
    monitoring: Monitoring
    serving: Serving
    orchestrator: Orchestrator
    query: Query = Field(
        default_factory=LocalQuery,
        description="The query engine feature views run on at scale (embedded DuckDB when not given).",
    )

    def to_json(self) -> str:
        """Serialize deterministically (sorted keys) so that rewriting an unchanged contract is a no-op."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def parse_contract(text: str, source: str) -> PlatformContract:
    """Parse and validate contract JSON; raise ContractError naming the offending field."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"platform contract in {source} is not valid JSON: {exc}") from exc
    try:
        return PlatformContract.model_validate(payload)
    except ValidationError as exc:
        raise ContractError(describe_validation_error(exc, f"invalid platform contract in {source}")) from exc


def load_contract_file(path: Path) -> PlatformContract:
    """Read a contract written by the local bootstrap."""
    if not path.exists():
        raise ContractError(
            f"platform contract not found at {path}: run `mlops env up --env <name>` to create it"
        )
    return parse_contract(path.read_text(), str(path))


def write_contract_file(contract: PlatformContract, path: Path) -> bool:
    """Write the contract; return True when the file changed (idempotent bootstrap)."""
    text = contract.to_json()
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
