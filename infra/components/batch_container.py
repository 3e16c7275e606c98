"""The container of a Batch training job definition, single-node or one node group of a multi-node
job: the platform image, the job and execution roles, resources, environment and awslogs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class JobIdentity:
    """Where a training container comes from and runs as (each value resolves at apply time)."""

    image: pulumi.Input[str]
    job_role_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]

    def render(
        self, document: Callable[[dict[str, Any]], dict[str, Any]], **fields: Any
    ) -> pulumi.Output[str]:
        """The JSON of `document(container)` for the container built from these values and `fields`."""
        return pulumi.Output.all(
            self.image, self.job_role_arn, self.execution_role_arn, self.log_group_name
        ).apply(lambda v: json.dumps(document(training_container(*v, **fields))))


def training_container(
    image: str,
    job_role: str,
    execution: str,
    logs: str,
    *,
    command: list[str],
    resources: dict[str, int],
    environment: dict[str, str],
    stream_prefix: str,
) -> dict[str, Any]:
    """Container properties as Batch's RegisterJobDefinition takes them (`resources`: VCPU, MEMORY, GPU)."""
    return {
        "image": image,
        "command": command,
        "jobRoleArn": job_role,
        "executionRoleArn": execution,
        "resourceRequirements": [{"type": kind, "value": str(value)} for kind, value in resources.items()],
        "privileged": False,
        "readonlyRootFilesystem": False,
        "environment": [{"name": name, "value": value} for name, value in environment.items()],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": logs, "awslogs-stream-prefix": stream_prefix},
        },
    }
