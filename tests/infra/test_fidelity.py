"""The fidelity checks: clean on every environment, and each one failing on a broken copy of the config,
the plan or the workflow, with a message naming the resource and the input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import yaml

from infra.fidelity.api_models import check_api_models
from infra.fidelity.calendar import check_calendar
from infra.fidelity.helm import check_helm
from infra.fidelity.iam import check_iam, patterns_overlap
from infra.fidelity.reachability import check_reachability
from infra.fidelity.run import run_fidelity
from infra.offline import Plan, PlannedResource
from mlops.paths import PACKAGE_ROOT

from .conftest import ENV_DIR, ENVIRONMENTS, plan_with

RELEASE = PACKAGE_ROOT / ".github" / "workflows" / "release.yml"
TODAY = date(2026, 11, 29)


def changed(
    plan: Plan, select: Callable[[PlannedResource], bool], change: Callable[[dict[str, Any]], None]
) -> Plan:
    """A copy of `plan` whose selected resources' inputs went through `change`."""
    resources = []
    for resource in plan.resources:
        if select(resource):
            inputs = copy.deepcopy(resource.inputs)
            change(inputs)
            resource = PlannedResource(resource.type, resource.name, inputs)
        resources.append(resource)
    return Plan(plan.environment, resources, plan.outputs)


def messages(report: Any) -> list[str]:
    return [str(f) for f in report.findings]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_passes_every_check(env: str) -> None:
    reports = run_fidelity(ENV_DIR, RELEASE, env)
    assert [r.check for r in reports] == ["api-models", "iam", "helm", "support-calendar", "reachability"]
    for report in reports:
        assert report.ok, "\n".join(messages(report))
        assert report.resources > 0 and report.checked > 0, report.summary()


# --- botocore's service models -------------------------------------------------------------------------


def test_api_models_cover_most_of_the_plan(plans: dict[str, Plan]) -> None:
    report = check_api_models(plans["prod"])
    aws_resources = [r for r in plans["prod"].resources if r.type.startswith("aws:")]
    assert report.resources == len(aws_resources)  # every AWS resource type maps to its API call
    assert report.checked > 500


def test_an_al2_batch_image_is_refused_with_awss_own_words(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["dev"],
        lambda r: r.name == "mlops-dev-gpu-spot",
        lambda i: i["computeResources"]["ec2Configurations"][0].update(imageType="ECS_AL2_NVIDIA"),
    )
    found = messages(check_api_models(broken))
    assert found and all(
        m.startswith("mlops-dev-gpu-spot: computeResources.ec2Configurations[0].imageType") for m in found
    )
    assert any("block creation of new Amazon ECS compute environments" in m for m in found)


def test_a_wrong_enum_and_a_misspelt_documented_value_are_named(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["prod"],
        lambda r: r.name in ("mlops-prod-eks-gpu-nodes", "mlops-prod-gpu-on-demand"),
        lambda i: (
            i.update(amiType="AL2023_x86_64_GPU")
            if "amiType" in i
            else i["computeResources"]["ec2Configurations"][0].update(imageType="ECS_AL2023_NVDIA")
        ),
    )
    found = messages(check_api_models(broken))
    assert any(
        m.startswith("mlops-prod-eks-gpu-nodes: amiType: 'AL2023_x86_64_GPU' is not one of AMITypes")
        for m in found
    )
    assert any(
        m.startswith(
            "mlops-prod-gpu-on-demand: computeResources.ec2Configurations[0].imageType: 'ECS_AL2023_NVDIA'"
        )
        and "documented values" in m
        for m in found
    )


def test_json_inputs_are_checked_against_their_shape(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["dev"],
        lambda r: r.type == "aws:batch/jobDefinition:JobDefinition" and r.name == "mlops-dev-training",
        lambda i: i.update(containerProperties=i["containerProperties"].replace('"VCPU"', '"CPU"')),
    )
    (finding,) = messages(check_api_models(broken))
    assert finding.startswith(
        "mlops-dev-training: containerProperties.resourceRequirements[0].type: 'CPU' is not one of"
    )


def test_limits_and_patterns_from_the_model(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["dev"],
        lambda r: r.name in ("mlops-dev-training-repo", "mlops-dev-prefect-db"),
        lambda i: (
            i.update(name="Training_Repo")
            if "imageTagMutability" in i
            else i.update(backupRetentionPeriod=36.5)
        ),
    )
    found = messages(check_api_models(broken))
    assert any(
        m.startswith("mlops-dev-training-repo: name: 'Training_Repo' does not match RepositoryName's pattern")
        for m in found
    )
    assert any(
        m.startswith("mlops-dev-prefect-db: backupRetentionPeriod: expects a whole number") for m in found
    )


# --- IAM's service reference ---------------------------------------------------------------------------


def _flows_policy(plan: Plan, env: str, change: Callable[[dict[str, Any]], None]) -> Plan:
    def edit(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        change(document)
        inputs["policy"] = json.dumps(document)

    return changed(plan, lambda r: r.name == f"mlops-{env}-flows-policy", edit)


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def test_the_reviews_submitjob_grant_is_refused(plans: dict[str, Plan]) -> None:
    def old_grant(document: dict[str, Any]) -> None:
        training = _statement(document, "Training")
        queues = [r for r in training["Resource"] if ":job-queue/" in r]
        definition = next(r for r in training["Resource"] if r.endswith(":*")).replace(":*", ":1")
        training["Resource"] = [*queues, definition]  # the job definition's `arn`, as before the fix

    found = messages(check_iam(_flows_policy(plans["dev"], "dev", old_grant)))
    assert any(
        m.startswith(
            "mlops-dev-flows-policy: policy.Statement[Training]: batch:SubmitJob requires resource type job "
        )
        for m in found
    )
    assert any("pinned revision" in m and "job-definition/mlops-dev-training:1" in m for m in found)


def test_an_action_on_the_wrong_attribute_is_refused(plans: dict[str, Plan]) -> None:
    # The bucket's name where its ARN belongs (`bucket.bucket` instead of `bucket.arn`).
    found = messages(
        check_iam(
            _flows_policy(
                plans["dev"], "dev", lambda d: _statement(d, "LakeBuckets").update(Resource=["mlops-dev-raw"])
            )
        )
    )
    assert found == [
        "mlops-dev-flows-policy: policy.Statement[LakeBuckets]: resource 'mlops-dev-raw' matches no resource type of "
        "['s3:ListBucket', 's3:GetBucketLocation']"
    ]


def test_unknown_actions_resource_level_and_condition_keys(plans: dict[str, Plan]) -> None:
    plan = plan_with("dev", compute={"extra_job_actions": ("s3:GetObjects",)})
    assert any(
        m.startswith("mlops-dev-training-job-policy: policy.Statement[Extra]: s3:GetObjects is not an action")
        for m in messages(check_iam(plan))
    )
    found = messages(
        check_iam(
            _flows_policy(
                plans["dev"],
                "dev",
                lambda d: _statement(d, "Metrics").update(
                    Resource="arn:aws:cloudwatch:eu-west-1:123456789012:alarm:x",
                    Condition={"StringEquals": {"cloudwatch:namespaces": "mlops/dev"}},
                ),
            )
        )
    )
    assert any("cloudwatch:PutMetricData has no resource-level permissions" in m for m in found)
    assert any("condition key cloudwatch:namespaces is not defined by cloudwatch" in m for m in found)


def test_wildcards_overlap_like_iam_evaluates_them() -> None:
    job_definition = "arn:${Partition}:batch:${Region}:${Account}:job-definition/${JobDefinitionName}"
    assert patterns_overlap("arn:aws:batch:eu-west-1:1:job-definition/train", job_definition)
    assert not patterns_overlap("arn:aws:batch:eu-west-1:1:job-definition/train:1", job_definition)
    assert patterns_overlap(
        "arn:aws:batch:eu-west-1:1:job-definition/train:*", job_definition + ":${Revision}"
    )
    stream = (
        "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"
    )
    assert patterns_overlap("arn:aws:logs:eu-west-1:1:log-group:/mlops/dev/batch:*", stream)
    bucket = "arn:${Partition}:s3:::${BucketName}"
    assert patterns_overlap("arn:aws:s3:::raw", bucket) and not patterns_overlap("arn:aws:s3:::raw/*", bucket)


# --- Helm chart record ---------------------------------------------------------------------------------


def test_a_chart_version_other_than_the_record_or_none_is_refused(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["prod"],
        lambda r: (
            r.type == "kubernetes:helm.sh/v3:Release"
            and r.inputs["chart"] in ("prefect-server", "kube-prometheus-stack")
        ),
        lambda i: i.update(version="2025.9.5") if i["chart"] == "prefect-server" else i.pop("version"),
    )
    found = messages(check_helm(broken))
    assert any(
        m.startswith(
            "mlops-prod-prefect-server: version: chart prefect-server '2025.9.5' is not the recorded"
        )
        for m in found
    )
    assert any(
        m.startswith("mlops-prod-monitoring-stack: version: chart kube-prometheus-stack is not pinned")
        for m in found
    )


def test_a_value_the_charts_schema_did_not_accept_is_refused(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["dev"],
        lambda r: r.name == "mlops-dev-prefect-server",
        lambda i: i["values"]["secret"].update(connectionString="postgresql://..."),
    )
    (finding,) = messages(check_helm(broken))
    assert finding.startswith(
        "mlops-dev-prefect-server: values.secret.connectionString: not among the values"
    )


# --- support calendars ---------------------------------------------------------------------------------


def test_a_kubernetes_version_near_its_end_of_support_is_refused() -> None:
    plan = plan_with("dev", orchestrator={"kubernetes_version": "1.34"})  # standard support ends 2026-12-02
    (finding,) = messages(check_calendar(plan, TODAY))
    assert finding.startswith(
        "mlops-dev-eks: version: EKS Kubernetes version '1.34' ends support on 2026-12-02, in 3 days"
    )
    (finding,) = messages(
        check_calendar(plan_with("dev", orchestrator={"kubernetes_version": "1.31"}), TODAY)
    )
    assert "reached its end of support on 2025-11-26" in finding
    (finding,) = messages(
        check_calendar(plan_with("dev", orchestrator={"kubernetes_version": "1.99"}), TODAY)
    )
    assert "'1.99' is not in the support calendar" in finding


def test_the_default_version_warns_90_days_ahead(plans: dict[str, Plan]) -> None:
    assert check_calendar(plans["dev"], date(2026, 12, 26)).ok  # 91 days before 2027-03-27
    (finding,) = messages(check_calendar(plans["dev"], date(2026, 12, 28)))
    assert finding.startswith(
        "mlops-dev-eks: version: EKS Kubernetes version '1.35' ends support on 2027-03-27, in 89 days"
    )


def test_al2_images_gpu_families_and_a_stale_calendar(plans: dict[str, Plan]) -> None:
    broken = changed(
        plans["staging"],
        lambda r: r.name == "mlops-staging-gpu-spot",
        lambda i: i["computeResources"].update(
            ec2Configurations=[{"imageType": "ECS_AL2_NVIDIA"}, {"imageType": "ECS_AL2023_NVIDIA"}],
            instanceTypes=["g5.xlarge", "p3.2xlarge"],
        ),
    )
    found = messages(check_calendar(broken, TODAY))
    assert any(
        m.startswith(
            "mlops-staging-gpu-spot: computeResources.ec2Configurations[0].imageType: Batch image type 'ECS_AL2_NVIDIA' reached"
        )
        for m in found
    )
    assert any(
        m.startswith(
            "mlops-staging-gpu-spot: computeResources.instanceTypes: p3.2xlarge is not supported by ECS_AL2023_NVIDIA"
        )
        for m in found
    )
    stale = messages(check_calendar(plans["dev"], date(2028, 1, 1)))
    assert any(m.startswith("infra/facts/support_calendar.yaml: recorded:") for m in stale)


# --- reachability of the release jobs ------------------------------------------------------------------


def _release() -> dict[str, Any]:
    return yaml.safe_load(RELEASE.read_text())


def _without(workflow: dict[str, Any], job: str, marker: str) -> dict[str, Any]:
    broken = copy.deepcopy(workflow)
    broken["jobs"][job]["steps"] = [s for s in broken["jobs"][job]["steps"] if marker not in s.get("run", "")]
    return broken


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_release_job_that_cannot_reach_the_cluster_or_prefect_is_refused(env: str) -> None:
    plan = plan_with(env, orchestrator={"ci_runner_cidr": "203.0.113.10/32"})
    assert check_reachability(_release(), env, lambda _: plan).ok
    found = messages(
        check_reachability(_without(_release(), env, "mlops ci runner-cidr"), env, lambda _: plan)
    )
    assert found == [f"release.yml job {env}: steps: `mlops ci runner-cidr` does not run before `pulumi up`"]
    found = messages(
        check_reachability(_without(_release(), env, "mlops ci prefect-api"), env, lambda _: plan)
    )
    assert len(found) == 1 and "is inside the cluster and no `mlops ci prefect-api` step" in found[0]


def test_a_private_only_cluster_is_unreachable_from_the_runner() -> None:
    private = plan_with("dev")  # no runner address: the endpoint stays private
    (finding,) = messages(check_reachability(_release(), "dev", lambda _: private))
    assert finding.startswith("mlops-dev-eks: vpcConfig: the cluster API does not admit the release runner")


def test_credentials_come_before_the_first_aws_call() -> None:
    broken = _release()
    for step in broken["jobs"]["dev"]["steps"]:
        (step.get("with") or {}).pop("role-arn", None)
    plan = plan_with("dev", orchestrator={"ci_runner_cidr": "203.0.113.10/32"})
    found = messages(check_reachability(broken, "dev", lambda _: plan))
    assert found == [
        "release.yml job dev: steps: no AWS credentials (the platform action with role-arn) before the first AWS call"
    ]
