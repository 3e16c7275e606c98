"""The Kubernetes work pool's base job template, completed with what the contract knows."""

from __future__ import annotations

import json
from typing import Any

from mlops.contract import AwsCompute, PlatformContract
from mlops.paths import project_root

TEMPLATE = "orchestration/kubernetes-job-template.json"


def kubernetes_job_template(contract: PlatformContract) -> dict[str, Any]:
    """The template of `orchestration/`, with the environment's platform image as the default image."""
    template: dict[str, Any] = json.loads((project_root() / TEMPLATE).read_text())
    if isinstance(contract.compute, AwsCompute):
        template["variables"]["properties"]["image"]["default"] = contract.compute.image_uri
    return template
