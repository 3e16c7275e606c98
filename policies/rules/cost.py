"""Cost guardrails: GPU instance types from an allow-list, capped vCPUs, per environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject
from policies.rules.batch import COMPUTE_ENVIRONMENT, is_gpu_environment


def gpu_instance_allow_list(env: Subject, params: Mapping[str, Any]) -> Iterable[str]:
    allowed = set(params.get("allowedInstanceTypes", []))
    if not is_gpu_environment(env):
        return
    outside = sorted(t for t in env.get("computeResources", "instanceTypes", default=[]) if t not in allowed)
    if outside:
        yield f"GPU instance types outside this environment's allow-list: {', '.join(outside)}"


def max_vcpus(env: Subject, params: Mapping[str, Any]) -> Iterable[str]:
    cap = params.get("maxVcpus")
    value = env.get("computeResources", "maxVcpus", default=0)
    if cap is not None and value > cap:
        yield f"maxVcpus {value:g} exceeds this environment's cap of {cap}"


RULES = (
    Rule(
        "cost-gpu-instance-allow-list",
        "GPU compute environments use only the environment's allowed instance types.",
        "WA ML Lens, cost optimization (right-size training instances)",
        types=(COMPUTE_ENVIRONMENT,),
        check=gpu_instance_allow_list,
        config_schema={"allowedInstanceTypes": {"type": "array", "items": {"type": "string"}}},
    ),
    Rule(
        "cost-max-vcpus",
        "Compute environments stay under the environment's vCPU cap.",
        "WA ML Lens, cost optimization (set budgets and limits)",
        types=(COMPUTE_ENVIRONMENT,),
        check=max_vcpus,
        config_schema={"maxVcpus": {"type": "integer"}},
    ),
)
