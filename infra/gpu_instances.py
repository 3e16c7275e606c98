"""GPU instance facts (GPUs, vCPUs, memory, EFA) from one dated record, `infra/facts/gpu_instances.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

GPU_RECORD = Path(__file__).parent / "facts" / "gpu_instances.yaml"


@dataclass(frozen=True)
class GpuInstance:
    name: str
    gpus: int
    vcpus: int
    memory_gib: int
    efa: bool


@cache
def gpu_instances() -> dict[str, GpuInstance]:
    """Every recorded GPU instance type by name."""
    document = yaml.safe_load(GPU_RECORD.read_text())
    return {name: GpuInstance(name=name, **facts) for name, facts in document["instances"].items()}
