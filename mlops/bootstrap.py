"""Local environment bootstrap: lay out the local platform and write its contract (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.contract import (
    LocalArtifacts,
    LocalCompute,
    LocalFeatureStore,
    LocalLake,
    LocalMonitoring,
    LocalRegistry,
    LocalServing,
    LocalTracking,
    Orchestrator,
    PlatformContract,
    load_contract_file,
    write_contract_file,
)
from mlops.settings import EnvironmentSettings, LocalPlatformSettings, SettingsError

CONTRACT_FILE = "contract.json"


@dataclass(frozen=True)
class BootstrapResult:
    contract: PlatformContract
    contract_path: Path
    changed: bool
    created_dirs: list[Path]


def local_root(settings: EnvironmentSettings) -> Path:
    if not isinstance(settings.platform, LocalPlatformSettings):
        raise SettingsError(f"environment {settings.name!r} is not a local environment (platform.kind)")
    return settings.platform.resolved_root()


def local_contract(settings: EnvironmentSettings) -> PlatformContract:
    """The contract of a local environment, derived from its root (every path named once, here)."""
    root = local_root(settings)
    return PlatformContract(
        environment=settings.name,
        lake=LocalLake(
            warehouse=str(root / "lake" / "warehouse"),
            catalog_uri=f"sqlite:///{root / 'lake' / 'catalog.db'}",
            quarantine=str(root / "lake" / "quarantine"),
        ),
        artifacts=LocalArtifacts(root=str(root / "artifacts")),
        feature_store=LocalFeatureStore(online_path=str(root / "features" / "online.db")),
        tracking=LocalTracking(
            tracking_uri=f"sqlite:///{root / 'tracking' / 'mlflow.db'}",
            artifact_root=(root / "tracking" / "artifacts").as_uri(),
        ),
        registry=LocalRegistry(
            database=str(root / "registry" / "registry.db"), model_store=str(root / "registry" / "models")
        ),
        compute=LocalCompute(),
        monitoring=LocalMonitoring(metrics_database=str(root / "monitoring" / "metrics.db")),
        serving=LocalServing(),
        orchestrator=Orchestrator(work_pool=f"{settings.name}-process"),
    )


def _directories(contract: PlatformContract, root: Path) -> list[Path]:
    assert isinstance(contract.lake, LocalLake) and isinstance(contract.artifacts, LocalArtifacts)
    return [
        Path(contract.lake.warehouse),
        Path(contract.lake.quarantine),
        Path(contract.artifacts.root),
        root / "features",
        root / "tracking" / "artifacts",
        root / "registry" / "models",
        root / "monitoring",
        root / "incoming",
    ]


def bring_up_local(settings: EnvironmentSettings) -> BootstrapResult:
    """Create the local platform's directories and stores and write its contract; a second run changes nothing."""
    root = local_root(settings)
    contract = local_contract(settings)
    created = []
    for directory in _directories(contract, root):
        if not directory.exists():
            directory.mkdir(parents=True)
            created.append(directory)
    # Creating the stores initialises their schemas (CREATE ... IF NOT EXISTS): idempotent.
    from pipelines.platform import connect

    connect(contract)
    path = root / CONTRACT_FILE
    changed = write_contract_file(contract, path)
    return BootstrapResult(contract, path, changed, created)


def read_local_contract(settings: EnvironmentSettings) -> PlatformContract:
    return load_contract_file(local_root(settings) / CONTRACT_FILE)
