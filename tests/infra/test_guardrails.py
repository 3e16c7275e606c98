"""Each guardrail fails when the config breaks what it guards (and a malformed config is named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import StackConfigError, parse_stack_config
from infra.inventory import evaluate_plan
from infra.offline import Plan, read_stack_config

from .conftest import ENV_DIR, plan_with


def _broken(plan: Plan, rule: str) -> list[tuple[str, str]]:
    return [(v.resource, v.level) for v in evaluate_plan(plan) if v.rule == rule]


def test_bucket_without_encryption_is_caught() -> None:
    plan = plan_with("prod", lake={"bucket_overrides": {"curated": {"encryption": False}}})
    assert _broken(plan, "s3-bucket-kms-encryption") == [("mlops-prod-curated", "mandatory")]


def test_bucket_without_public_access_block_is_caught() -> None:
    plan = plan_with("dev", lake={"bucket_overrides": {"raw": {"block_public_access": False}}})
    assert _broken(plan, "s3-public-access-block") == [("mlops-dev-raw", "mandatory")]


def test_wildcard_iam_action_is_caught() -> None:
    plan = plan_with("dev", compute={"extra_job_actions": ["s3:*"]})
    assert _broken(plan, "iam-no-wildcard-actions") == [("mlops-dev-training-job-policy", "mandatory")]


def test_gpu_environment_that_does_not_scale_to_zero_is_caught() -> None:
    plan = plan_with("staging", compute={"gpu_min_vcpus": 8})
    assert sorted(_broken(plan, "batch-gpu-scale-to-zero")) == [
        ("mlops-staging-gpu-on-demand", "mandatory"),
        ("mlops-staging-gpu-spot", "mandatory"),
    ]


def test_cost_limits_are_advisory_in_dev_and_mandatory_in_prod() -> None:
    dev = plan_with("dev", compute={"gpu_instance_types": ["p4d.24xlarge"]})
    assert set(_broken(dev, "cost-gpu-instance-allow-list")) == {
        ("mlops-dev-gpu-spot", "advisory"),
        ("mlops-dev-gpu-on-demand", "advisory"),
    }
    prod = plan_with("prod", compute={"gpu_max_vcpus": 1024})
    assert ("mlops-prod-gpu-spot", "mandatory") in _broken(prod, "cost-max-vcpus")


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
