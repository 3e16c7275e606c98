"""Levels per environment are data, and the rules work as CrossGuard policies too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.crossguard import to_policy
from policies.enforcement import ENFORCEMENT_DIR, EnforcementError, load_enforcement
from policies.model import Level
from policies.rules import BY_NAME

ENVIRONMENTS = ("dev", "staging", "prod")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rule_has_a_level_in_every_environment(env: str) -> None:
    assert set(load_enforcement(env)) == set(BY_NAME)


def test_levels_differ_by_environment() -> None:
    levels = {env: load_enforcement(env) for env in ENVIRONMENTS}
    assert levels["dev"]["cost-max-vcpus"].level == Level.ADVISORY
    assert levels["prod"]["cost-max-vcpus"].level == Level.MANDATORY
    assert levels["dev"]["rds-multi-az"].level == Level.DISABLED
    assert levels["prod"]["rds-multi-az"].level == Level.MANDATORY
    for env in ENVIRONMENTS:  # security rules are never relaxed
        assert levels[env]["s3-bucket-kms-encryption"].level == Level.MANDATORY


def test_enforcement_file_with_unknown_or_missing_rules_is_refused(tmp_path: Path) -> None:
    payload = json.loads((ENFORCEMENT_DIR / "dev.json").read_text())
    payload.pop("s3-tls-only")
    payload["s3-made-up"] = {"enforcementLevel": "mandatory"}
    (tmp_path / "dev.json").write_text(json.dumps(payload))
    with pytest.raises(
        EnforcementError, match=r"unknown rules \['s3-made-up'\].*without a level \['s3-tls-only'\]"
    ):
        load_enforcement("dev", tmp_path)
    with pytest.raises(EnforcementError, match="no policy enforcement file"):
        load_enforcement("qa", tmp_path)


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def test_resource_rule_as_crossguard_policy() -> None:
    policy = to_policy(BY_NAME["ecr-immutable-tags"], EnforcementLevel.ADVISORY)
    assert isinstance(policy, ResourceValidationPolicy)
    reports: list[str] = []
    for mutability in ("MUTABLE", "IMMUTABLE"):
        args = ResourceValidationArgs(
            "aws:ecr/repository:Repository",
            {"imageTagMutability": mutability},
            "urn:x",
            "repo",
            _options(),
            None,
            {},
        )
        policy.validate(args, lambda message, urn=None: reports.append(message))  # type: ignore[misc, operator, union-attr]
    assert reports == ["image tags are mutable"]


def test_stack_rule_as_crossguard_policy_follows_property_dependencies() -> None:
    policy = to_policy(BY_NAME["vpc-flow-logs"])
    assert isinstance(policy, StackValidationPolicy)

    def resource(
        type_token: str, name: str, deps: dict[str, list[PolicyResource]] | None = None
    ) -> PolicyResource:
        return PolicyResource(type_token, {}, f"urn:{name}", name, _options(), None, None, [], deps or {})

    logged, unlogged = resource("aws:ec2/vpc:Vpc", "logged"), resource("aws:ec2/vpc:Vpc", "bare")
    flow = resource("aws:ec2/flowLog:FlowLog", "flow", {"vpcId": [logged]})
    reports: list[tuple[str, str | None]] = []
    policy.validate(
        StackValidationArgs([logged, unlogged, flow], {}),
        lambda message, urn=None: reports.append((message, urn)),
    )  # type: ignore[misc, operator, union-attr]
    assert reports == [("bare: VPC has no flow log", "urn:bare")]


def test_every_rule_builds_as_a_crossguard_policy() -> None:
    from policies.rules import ALL_RULES

    built = [to_policy(rule) for rule in ALL_RULES]
    assert [p.name for p in built] == [r.name for r in ALL_RULES]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in built)


def test_readme_table_lists_every_rule_with_its_levels() -> None:
    from mlops.paths import PACKAGE_ROOT
    from policies.table import rules_table

    assert rules_table() in (PACKAGE_ROOT / "README.md").read_text(), (
        "regenerate it: python -m policies.table"
    )
