"""Per-environment settings (`environments/<env>.yaml`): where the platform is and how pipelines behave.

Infrastructure sizing lives in the Pulumi stack config (`environments/Pulumi.<env>.yaml`); this file
holds what the pipelines and the local bootstrap need. Environments differ by these files only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.paths import environments_dir, project_root
from mlops.validation_errors import describe_validation_error


class SettingsError(Exception):
    """Environment settings are missing or malformed; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalPlatformSettings(_Strict):
    kind: Literal["local"] = "local"
    root: str = Field(description="Directory of the local platform, relative to the project root.")

    def resolved_root(self) -> Path:
        """Absolute root; $MLOPS_LOCAL_ROOT overrides the file (tests, side-by-side sandboxes)."""
        override = os.environ.get("MLOPS_LOCAL_ROOT")
        root = Path(override) if override else Path(self.root)
        return root if root.is_absolute() else (project_root() / root).resolve()


class AwsPlatformSettings(_Strict):
    kind: Literal["aws"] = "aws"
    region: str
    contract_parameter: str | None = Field(
        default=None,
        description="SSM parameter holding the contract; default /mlops/<env>/platform-contract.",
    )


PlatformSettings = Annotated[LocalPlatformSettings | AwsPlatformSettings, Field(discriminator="kind")]


class DistributedSettings(_Strict):
    """Data-parallel training: `nodes` x `processes_per_node` ranks (one per GPU, or CPU processes)."""

    nodes: int = Field(default=1, ge=1, le=64, description="Machines (AWS Batch multi-node parallel job).")
    processes_per_node: int = Field(default=1, ge=1, le=16, description="Ranks per machine (GPUs per node).")

    @property
    def world_size(self) -> int:
        return self.nodes * self.processes_per_node


class TrainingSettings(_Strict):
    max_epochs: int = Field(default=12, ge=1, le=1000)
    batch_size: int = Field(default=1024, ge=8, description="The global batch, split across ranks.")
    learning_rate: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    patience: int = Field(default=3, ge=1)
    hidden_sizes: tuple[int, ...] = (64, 32)
    embedding_dim: int = Field(default=8, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42
    warm_start: bool = Field(
        default=False,
        description="Continue from the champion's weights and encoding when it has the same features, "
        "task and architecture (a new dataset version then trains in fewer epochs); from scratch otherwise.",
    )
    distributed: DistributedSettings = DistributedSettings()

    @model_validator(mode="after")
    def _batch_covers_the_ranks(self) -> TrainingSettings:
        world = self.distributed.world_size
        if self.batch_size < world:
            raise ValueError(
                f"batch_size {self.batch_size} is smaller than the world size {world} "
                f"({self.distributed.nodes} node(s) x {self.distributed.processes_per_node} process(es)): "
                "every rank needs rows in every step"
            )
        return self


class GateSettings(_Strict):
    """What a candidate must show on its test split. Each task reads the gates that apply to it;
    skills are relative to a constant baseline fitted on the same training split, so one setting
    means the same on any dataset."""

    # Binary classification.
    min_auc: float = Field(default=0.70, ge=0, le=1)
    min_log_loss_skill: float = Field(
        default=0.02,
        le=1,
        description="1 - log loss / log loss of always predicting the training base rate.",
    )
    min_slice_auc: float = Field(default=0.55, ge=0, le=1)
    min_slice_positives: int = Field(
        default=30, ge=1, description="Slices with fewer positives (or negatives) are reported, not gated."
    )
    max_auc_drop_vs_champion: float = Field(default=0.01, ge=0)
    # Regression.
    min_r2: float = Field(default=0.10, le=1, description="Test R^2 (1 = perfect, 0 = the test mean).")
    min_rmse_skill: float = Field(
        default=0.02, le=1, description="1 - RMSE / RMSE of always predicting the training mean."
    )
    min_slice_r2: float = Field(default=0.0, le=1)
    max_r2_drop_vs_champion: float = Field(default=0.02, ge=0)
    # Both.
    min_slice_rows: int = Field(default=300, ge=1, description="Smaller slices are reported, not gated.")
    slice_columns: tuple[str, ...] | None = Field(
        default=None, description="Override of the use case's task.slices (rarely needed)."
    )


def _memory_limit(work: str) -> Any:
    """A DuckDB memory limit: what `work` may hold in memory before it spills to disk."""
    return Field(
        default="1GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$",
        description=f"Memory {work} may hold before it spills to disk.",
    )


class EvaluationSettings(_Strict):
    importance_rows: int = Field(
        default=200_000,
        ge=1_000,
        description=(
            "Test rows permutation importance is measured on (a seeded sample past this size; "
            "the gates judge every row)."
        ),
    )


class IngestSettings(_Strict):
    chunk_rows: int = Field(
        default=500_000,
        ge=1_000,
        description="Rows of a Parquet batch validated and landed at once (memory follows it, not the file).",
    )


class SplitSettings(_Strict):
    valid_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    memory_limit: str = _memory_limit("the training set's point-in-time join")


class DemoSettings(_Strict):
    rows: int = Field(default=200_000, ge=1_000, le=10_000_000)
    seed: int = 7


class FeatureSettings(_Strict):
    """Where the feature view is computed when it is computed in full."""

    query_engine_from_rows: int = Field(
        default=2_000_000,
        ge=0,
        description=(
            "At or above this many curated rows, features run on the environment's query engine "
            "(DuckDB on the machine, Athena on AWS: where the data is, out of core); below it, in "
            "this process. 0 sends every run to the engine."
        ),
    )


def _schedule(deployment: str) -> Any:
    """The cron field of a scheduled deployment's settings (prefect.yaml repeats the value)."""
    return Field(
        default=None,
        pattern=r"^\S+( \S+){4}$",
        description=f"Cron schedule of the {deployment} deployment (prefect.yaml repeats it); none: on demand.",
    )


class BatchInferenceSettings(_Strict):
    """The batch-inference flow: what it scores, how, and when its deployment runs."""

    schedule: str | None = _schedule("batch-inference")
    table: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="Lake table scored by default (namespace.name); none: the use case's curated table.",
    )
    chunk_rows: int = Field(
        default=200_000, ge=1_000, le=5_000_000, description="Rows scored and written per chunk."
    )
    memory_limit: str = _memory_limit("the point-in-time join of batch inference")


class SweepSettings(_Strict):
    """The sweep flow: how many trials, how they are cut into chunks, and when its deployment runs."""

    schedule: str | None = _schedule("sweep")
    trials_per_segment: int | None = Field(
        default=None, ge=1, le=10_000, description="Override of the use case's sweep.trials_per_segment."
    )
    chunk_trials: int = Field(
        default=100, ge=1, le=10_000, description="Trials per chunk: the unit of work, retry and resume."
    )
    stack_trials: bool = Field(
        default=True,
        description="Train a chunk's trials of one network shape side by side as one batched computation "
        "(false: one after another; the metrics agree to float32 rounding).",
    )


class QualitySettings(_Strict):
    """Live quality: captured predictions joined to the labels that arrive later (the quality flow)."""

    schedule: str | None = _schedule("quality")
    window_days: int = Field(
        default=30, ge=1, le=366, description="Days of predictions measured, back from the newest one made."
    )
    match_window_hours: float = Field(
        default=24.0,
        gt=0,
        description="A prediction takes the label of its entity's latest event at or before it, at most this old.",
    )
    min_rows: int = Field(
        default=200, ge=10, description="Labelled rows a version or slice needs to be judged."
    )
    min_positives: int = Field(
        default=20, ge=1, description="Rows of each class a binary group needs to be judged."
    )
    max_auc_drop: float = Field(
        default=0.05, ge=0, le=1, description="Live AUC allowed below the evaluation's."
    )
    max_r2_drop: float = Field(default=0.10, ge=0, description="Live R² allowed below the evaluation's.")


class PipelineSettings(_Strict):
    usecase: str = Field(description="Use-case spec (dataset + features), relative to the project root.")
    model_name: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{1,40}$",
        description="Override of the use case's model name (task.model_name, or derived from the dataset).",
    )
    ingest: IngestSettings = IngestSettings()
    training: TrainingSettings = TrainingSettings()
    gates: GateSettings = GateSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    split: SplitSettings = SplitSettings()
    demo: DemoSettings = DemoSettings()
    features: FeatureSettings = FeatureSettings()
    batch_inference: BatchInferenceSettings = BatchInferenceSettings()
    quality: QualitySettings = QualitySettings()
    sweep: SweepSettings = SweepSettings()

    def usecase_path(self) -> Path:
        path = Path(self.usecase)
        return path if path.is_absolute() else project_root() / path


class ServingSettings(_Strict):
    """How `mlops serve` (and the serving container) runs the endpoint."""

    workers: int | Literal["auto"] = Field(
        default="auto",
        description="Worker processes; 'auto' is one per CPU this process may use (affinity and cgroup quota).",
    )
    capture: float = Field(default=1.0, ge=0.0, le=1.0, description="Share of requests captured to the lake.")

    @field_validator("workers")
    @classmethod
    def _at_least_one(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 64:
            raise ValueError(f"expected 'auto' or a whole number from 1 to 64, got {value}")
        return value

    def worker_count(self) -> int:
        """The worker processes to start."""
        if self.workers != "auto":
            return int(self.workers)
        from models.threads import affinity_cpus, cgroup_cpu_limit, usable_cpus

        return max(1, min(8, int(usable_cpus(affinity_cpus(), cgroup_cpu_limit()))))


class EnvironmentSettings(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    platform: PlatformSettings
    pipeline: PipelineSettings
    serving: ServingSettings = ServingSettings()

    def contract_parameter(self) -> str:
        """SSM parameter name of an AWS environment's contract (derived, never hard-coded twice)."""
        if isinstance(self.platform, AwsPlatformSettings) and self.platform.contract_parameter:
            return self.platform.contract_parameter
        return f"/mlops/{self.name}/platform-contract"


def settings_path(env: str) -> Path:
    return environments_dir() / f"{env}.yaml"


def load_settings(env: str) -> EnvironmentSettings:
    """Load and validate `environments/<env>.yaml`."""
    path = settings_path(env)
    if not path.exists():
        known = sorted(p.stem for p in environments_dir().glob("*.yaml") if not p.stem.startswith("Pulumi"))
        raise SettingsError(f"unknown environment {env!r}: {path} does not exist (known: {', '.join(known)})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    try:
        settings = EnvironmentSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(
            describe_validation_error(exc, f"invalid environment settings in {path}")
        ) from exc
    if settings.name != env:
        raise SettingsError(f"{path}: name is {settings.name!r} but the file is for environment {env!r}")
    return settings
