"""Reading a plan: key settings per resource (for people) and stack-level checks (for tests and CI).

In pulumi-aws 7 a bucket's encryption, versioning and public access block are separate resources,
so these checks look across resources: a bucket is encrypted when an encryption configuration
names it. The policy pack (issue #6) enforces the same rules per environment.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from infra.context import REQUIRED_TAGS
from infra.offline import Plan, PlannedResource

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
COMPUTE_ENVIRONMENT = "aws:batch/computeEnvironment:ComputeEnvironment"
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def mock_id(resource: PlannedResource) -> str:
    """The id the offline plan's mocks give a resource (other resources refer to it by this id)."""
    return f"{resource.name}-id"


def _by_bucket(plan: Plan, type_token: str) -> dict[str, PlannedResource]:
    return {r.inputs.get("bucket", ""): r for r in plan.of_type(type_token)}


def unencrypted_buckets(plan: Plan) -> list[str]:
    """Buckets without a default encryption configuration."""
    configs = _by_bucket(plan, ENCRYPTION)
    return [b.name for b in plan.of_type(BUCKET) if mock_id(b) not in configs]


def buckets_without_public_access_block(plan: Plan) -> list[str]:
    """Buckets without a public access block that sets all four flags."""
    blocks = _by_bucket(plan, PUBLIC_ACCESS_BLOCK)
    missing = []
    for bucket in plan.of_type(BUCKET):
        block = blocks.get(mock_id(bucket))
        if block is None or not all(block.inputs.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS):
            missing.append(bucket.name)
    return missing


def _statements(document: Any) -> Iterable[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document or {}
    statements = parsed.get("Statement", [])
    return [statements] if isinstance(statements, dict) else statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_iam_actions(plan: Plan) -> list[str]:
    """IAM policies that allow `*` or `service:*` actions (resource: statement sid)."""
    found = []
    for resource in plan.resources:
        if not resource.type.startswith("aws:iam/"):
            continue
        for field in ("policy", "assumeRolePolicy"):
            for statement in _statements(resource.inputs.get(field)):
                if statement.get("Effect") != "Allow":
                    continue
                wild = [a for a in _as_list(statement.get("Action", [])) if a == "*" or str(a).endswith(":*")]
                if wild:
                    found.append(
                        f"{resource.name}: {statement.get('Sid', '<no sid>')} allows {', '.join(wild)}"
                    )
    return found


def gpu_environments_not_scaling_to_zero(plan: Plan) -> list[str]:
    """GPU compute environments whose minimum vCPUs is not 0 (an idle environment would cost money)."""
    return [
        f"{env.name}: minVcpus={env.inputs.get('computeResources', {}).get('minVcpus')}"
        for env in plan.of_type(COMPUTE_ENVIRONMENT)
        if env.inputs.get("tags", {}).get("accelerator") == "gpu"
        and env.inputs.get("computeResources", {}).get("minVcpus") != 0
    ]


@cache
def is_taggable(type_token: str) -> bool:
    """Whether a pulumi-aws resource type accepts tags (read from the SDK class's signature)."""
    package, rest = type_token.split(":", 1)
    module_path, class_name = rest.split(":")
    module = module_path.split("/")[0]
    if package != "aws":
        return False
    sdk = importlib.import_module(f"pulumi_aws.{module}")
    cls = getattr(sdk, class_name, None)
    if cls is None:
        raise LookupError(f"cannot find the pulumi-aws class of {type_token}")
    return "tags" in inspect.signature(cls._internal_init).parameters


def resources_missing_tags(plan: Plan, required: tuple[str, ...] = REQUIRED_TAGS) -> list[str]:
    """Taggable resources lacking any required tag (or carrying it empty)."""
    missing = []
    for resource in plan.resources:
        if resource.is_component or not is_taggable(resource.type):
            continue
        tags = resource.inputs.get("tags") or {}
        absent = [tag for tag in required if not tags.get(tag)]
        if absent:
            missing.append(f"{resource.name}: {', '.join(absent)}")
    return missing


CHECKS = {
    "bucket encryption": unencrypted_buckets,
    "bucket public access block": buckets_without_public_access_block,
    "no wildcard IAM actions": wildcard_iam_actions,
    "GPU compute scales to zero": gpu_environments_not_scaling_to_zero,
    "required tags": resources_missing_tags,
}


def run_checks(plan: Plan) -> dict[str, list[str]]:
    """Every check's findings; empty lists everywhere means the plan is clean."""
    return {name: check(plan) for name, check in CHECKS.items()}


def key_settings(resource: PlannedResource) -> str:
    """A one-line summary of what matters about a resource, for the plan table and diff."""
    i = resource.inputs
    kind = resource.type.rsplit(":", 1)[-1]
    summaries = {
        "Vpc": lambda: f"cidr={i.get('cidrBlock')}",
        "Subnet": lambda: f"{i.get('availabilityZone')} {i.get('cidrBlock')}",
        "NatGateway": lambda: "nat",
        "VpcEndpoint": lambda: (
            f"{i.get('vpcEndpointType')} {str(i.get('serviceName', '')).rsplit('.', 1)[-1] if i.get('vpcEndpointType') == 'Gateway' else i.get('serviceName', '').split('.', 3)[-1]}"
        ),
        "Key": lambda: (
            f"rotation={i.get('enableKeyRotation')} deletion_window={int(i.get('deletionWindowInDays', 0))}d"
        ),
        "Bucket": lambda: f"bucket={i.get('bucket')} force_destroy={i.get('forceDestroy')}",
        "BucketServerSideEncryptionConfiguration": lambda: (
            f"sse={i['rules'][0]['applyServerSideEncryptionByDefault']['sseAlgorithm']}"
        ),
        "BucketLifecycleConfiguration": lambda: (
            "rules=" + ",".join(r.get("id", "") for r in i.get("rules", []))
        ),
        "ComputeEnvironment": lambda: (
            f"{i['computeResources']['type']} vcpus={int(i['computeResources']['minVcpus'])}..{int(i['computeResources']['maxVcpus'])} "
            f"types={','.join(i['computeResources']['instanceTypes'])}"
        ),
        "JobQueue": lambda: (
            f"priority={int(i.get('priority', 0))} environments={len(i.get('computeEnvironmentOrders', []))}"
        ),
        "JobDefinition": lambda: (
            f"attempts={int(i['retryStrategy']['attempts'])} timeout={int(i['timeout']['attemptDurationSeconds'])}s"
        ),
        "Repository": lambda: (
            f"tags={i.get('imageTagMutability')} scan_on_push={i.get('imageScanningConfiguration', {}).get('scanOnPush')}"
        ),
        "LogGroup": lambda: (
            f"retention={int(i.get('retentionInDays', 0))}d kms={'yes' if i.get('kmsKeyId') else 'no'}"
        ),
        "MetricAlarm": lambda: f"{i.get('name')} threshold={i.get('threshold')}",
        "FeatureGroup": lambda: (
            f"features={len(i.get('featureDefinitions', []))} online={'yes' if i.get('onlineStoreConfig') else 'no'}"
        ),
        "MlflowTrackingServer": lambda: f"size={i.get('trackingServerSize')}",
        "TopicSubscription": lambda: f"{i.get('protocol')}",
        "ModelPackageGroupPolicy": lambda: "cross-account read",
        "Parameter": lambda: f"{i.get('name')}",
    }
    summary = summaries.get(kind)
    try:
        return summary() if summary else ""
    except (KeyError, TypeError, IndexError):
        return ""
