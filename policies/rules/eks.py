"""EKS clusters (the orchestrator's, issue #8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, as_list

CLUSTER = "aws:eks/cluster:Cluster"
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def private_endpoint(cluster: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if cluster.get("vpcConfig", "endpointPublicAccess", default=True) is False:
        return
    cidrs = as_list(cluster.get("vpcConfig", "publicAccessCidrs"))
    if not cidrs or "0.0.0.0/0" in cidrs:
        yield "the API endpoint is public to the whole internet (disable it or restrict publicAccessCidrs)"


def secrets_encryption(cluster: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    configs = as_list(cluster.get("encryptionConfig"))
    if not any(
        "secrets" in as_list(c.get("resources")) and (c.get("provider") or {}).get("keyArn") for c in configs
    ):
        yield "Kubernetes secrets are not envelope-encrypted with a KMS key"


def control_plane_logging(cluster: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    missing = sorted(set(CONTROL_PLANE_LOGS) - set(as_list(cluster.get("enabledClusterLogTypes"))))
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


RULES = (
    Rule(
        "eks-private-endpoint",
        "The cluster API is private, or public only to listed CIDRs.",
        "CKV_AWS_39, CKV_AWS_38, AVD-AWS-0040/0041",
        types=(CLUSTER,),
        check=private_endpoint,
    ),
    Rule(
        "eks-secrets-encryption",
        "Secrets are encrypted with a KMS key.",
        "CKV_AWS_58, AVD-AWS-0039",
        types=(CLUSTER,),
        check=secrets_encryption,
    ),
    Rule(
        "eks-control-plane-logging",
        "All control-plane log types are enabled.",
        "CKV_AWS_37, AVD-AWS-0038",
        types=(CLUSTER,),
        check=control_plane_logging,
    ),
)
