"""AWS Batch: no privileged containers; GPU compute that costs nothing when idle."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject

JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"
COMPUTE_ENVIRONMENT = "aws:batch/computeEnvironment:ComputeEnvironment"
GPU_FAMILIES = ("p2", "p3", "p4", "p5", "p6", "g3", "g4", "g5", "g6", "gr6", "trn", "inf", "dl1")


def is_gpu_environment(env: Subject) -> bool:
    if env.get("tags", "accelerator") == "gpu":
        return True
    return any(
        str(t).startswith(GPU_FAMILIES) for t in env.get("computeResources", "instanceTypes", default=[])
    )


def no_privileged(job: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    raw = job.get("containerProperties")
    container = json.loads(raw) if isinstance(raw, str) else raw or {}
    if container.get("privileged") is True:
        yield "job definition runs a privileged container"


def gpu_scale_to_zero(env: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if is_gpu_environment(env):
        minimum = env.get("computeResources", "minVcpus", default=0)
        if minimum != 0:
            yield f"GPU compute environment keeps {minimum:g} vCPUs running when idle (minVcpus must be 0)"


RULES = (
    Rule(
        "batch-no-privileged-containers",
        "Job definitions do not run privileged containers.",
        "CKV_AWS_210",
        types=(JOB_DEFINITION,),
        check=no_privileged,
    ),
    Rule(
        "batch-gpu-scale-to-zero",
        "GPU compute environments scale to zero when idle.",
        "WA ML Lens, cost optimization (release idle compute)",
        types=(COMPUTE_ENVIRONMENT,),
        check=gpu_scale_to_zero,
    ),
)
