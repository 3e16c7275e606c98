"""Runs the rules offline, over the inventory the infra program produces under mocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.enforcement import RuleSetting
from policies.model import Level, Subject, Violation
from policies.rules import ALL_RULES


def subjects_from_inventory(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]], id_of: Mapping[str, str]
) -> list[Subject]:
    """Subjects with references resolved: a top-level property whose value is another resource's id."""
    by_id = {resource_id: name for name, resource_id in id_of.items()}
    subjects = []
    for type_token, name, props in resources:
        refs = {
            key: (by_id[value],) for key, value in props.items() if isinstance(value, str) and value in by_id
        }
        subjects.append(Subject(type_token, name, props, refs))
    return subjects


def evaluate(subjects: list[Subject], settings: Mapping[str, RuleSetting]) -> list[Violation]:
    """Every violation of every rule that is not disabled, with its level."""
    violations = []
    for rule in ALL_RULES:
        setting = settings[rule.name]
        if setting.level == Level.DISABLED:
            continue
        for resource, message in rule.findings(subjects, setting.params):
            violations.append(Violation(rule.name, setting.level, resource, message))
    return violations
