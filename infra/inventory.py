"""Reading a plan: key settings per resource (for people) and the policy pack's verdict on it."""

from __future__ import annotations

from infra.offline import Plan, PlannedResource
from policies.enforcement import load_enforcement
from policies.evaluate import evaluate, subjects_from_inventory
from policies.model import Subject, Violation


def mock_id(resource: PlannedResource) -> str:
    """The id the offline plan's mocks give a resource (other resources refer to it by this id)."""
    return f"{resource.name}-id"


def policy_subjects(plan: Plan) -> list[Subject]:
    """The plan's resources as the policy rules see them, with references resolved through mock ids."""
    resources = [r for r in plan.resources if not r.is_component]
    return subjects_from_inventory(
        ((r.type, r.name, r.inputs) for r in resources), {r.name: mock_id(r) for r in resources}
    )


def evaluate_plan(plan: Plan, env: str | None = None) -> list[Violation]:
    """The policy pack's violations for this plan, at the levels of `env` (default: the plan's environment)."""
    return evaluate(policy_subjects(plan), load_enforcement(env or plan.environment))


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
