"""Each guardrail fails when the config breaks what it guards (and a malformed config is named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import StackConfigError, parse_stack_config
from infra.inventory import (
    buckets_without_public_access_block,
    gpu_environments_not_scaling_to_zero,
    resources_missing_tags,
    unencrypted_buckets,
    wildcard_iam_actions,
)
from infra.offline import Plan, PlannedResource, read_stack_config

from .conftest import ENV_DIR, plan_with


def test_bucket_without_encryption_is_caught() -> None:
    plan = plan_with("prod", lake={"bucket_overrides": {"curated": {"encryption": False}}})
    assert unencrypted_buckets(plan) == ["mlops-prod-curated"]


def test_bucket_without_public_access_block_is_caught() -> None:
    plan = plan_with("dev", lake={"bucket_overrides": {"raw": {"block_public_access": False}}})
    assert buckets_without_public_access_block(plan) == ["mlops-dev-raw"]


def test_wildcard_iam_action_is_caught() -> None:
    plan = plan_with("dev", compute={"extra_job_actions": ["s3:*"]})
    assert wildcard_iam_actions(plan) == ["mlops-dev-training-job-policy: Extra allows s3:*"]


def test_gpu_environment_that_does_not_scale_to_zero_is_caught() -> None:
    plan = plan_with("staging", compute={"gpu_min_vcpus": 8})
    assert sorted(gpu_environments_not_scaling_to_zero(plan)) == [
        "mlops-staging-gpu-on-demand: minVcpus=8.0",
        "mlops-staging-gpu-spot: minVcpus=8.0",
    ]


def test_missing_tag_is_caught() -> None:
    bare = PlannedResource(
        "aws:s3/bucket:Bucket", "naked", {"tags": {"environment": "dev", "project": "p", "owner": ""}}
    )
    untaggable = PlannedResource("aws:s3/bucketPolicy:BucketPolicy", "policy", {})
    assert resources_missing_tags(Plan("dev", [bare, untaggable])) == ["naked: owner, cost-center"]


def test_config_without_an_owner_tag_is_refused() -> None:
    config, _ = read_stack_config(ENV_DIR, "dev")
    payload = config.model_dump()
    payload["owner"] = ""
    with pytest.raises(StackConfigError, match=r"mlops-blueprint:platform\.owner"):
        parse_stack_config(payload, "test")


def test_malformed_stack_config_names_the_keys(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  mlops-blueprint:platform:\n    environment: bad\n    owner: me\n    cost_center: c\n"
        "    network: {cidr: 10.0.0.0/8, availability_zones: [a]}\n    compute: {gpu_instance_types: [g5.xlarge], gpu_max_vcpus: 4, cpu_max_vcpus: 4, job_attempts: 0}\n"
    )
    with pytest.raises(StackConfigError) as error:
        read_stack_config(tmp_path, "bad")
    message = str(error.value)
    assert "mlops-blueprint:platform.network.cidr" in message
    assert "mlops-blueprint:platform.network.availability_zones" in message
    assert "mlops-blueprint:platform.compute.job_attempts" in message


def test_unknown_stack_lists_known_ones() -> None:
    with pytest.raises(StackConfigError, match="known stacks: dev, prod, staging"):
        read_stack_config(ENV_DIR, "qa")
