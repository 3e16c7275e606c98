"""Turns the rules into CrossGuard policies (only `policies/__main__.py` builds the pack)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.model import Rule, Subject

Report = Callable[..., None]


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties=dict(rule.config_schema)) if rule.config_schema else None


def to_policy(
    rule: Rule, level: EnforcementLevel = EnforcementLevel.MANDATORY
) -> ResourceValidationPolicy | StackValidationPolicy:
    """The CrossGuard form of a rule; its level is overridden per environment by the pack config file."""
    if rule.check is not None:
        check = rule.check

        def validate_resource(args: ResourceValidationArgs, report: Report) -> None:
            if args.resource_type in rule.types:
                subject = Subject(args.resource_type, args.name, dict(args.props))
                for message in check(subject, args.get_config() or {}):
                    report(message)

        return ResourceValidationPolicy(
            name=rule.name,
            description=f"{rule.description} (mirrors {rule.mirrors})",
            validate=validate_resource,
            enforcement_level=level,
            config_schema=_schema(rule),
        )

    stack_check = rule.stack_check
    assert stack_check is not None

    def validate_stack(args: StackValidationArgs, report: Report) -> None:
        subjects, urns = [], {}
        for resource in args.resources:
            dependencies: dict[str, Any] = resource.property_dependencies or {}
            refs = {prop: tuple(dep.name for dep in deps) for prop, deps in dependencies.items()}
            subjects.append(Subject(resource.resource_type, resource.name, dict(resource.props), refs))
            urns[resource.name] = resource.urn
        for name, message in stack_check(subjects, args.get_config() or {}):
            report(f"{name}: {message}", urns.get(name))

    return StackValidationPolicy(
        name=rule.name,
        description=f"{rule.description} (mirrors {rule.mirrors})",
        validate=validate_stack,
        enforcement_level=level,
        config_schema=_schema(rule),
    )
