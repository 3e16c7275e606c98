"""What a rule sees and reports, independent of CrossGuard so that rules run offline too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Subject:
    """One resource: its type token, logical name, properties (wire form: camelCase) and references.

    `refs` maps a property to the logical names of the resources it points at (CrossGuard's
    property dependencies; offline, the mocks' ids).
    """

    type: str
    name: str
    props: Mapping[str, Any]
    refs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, *path: str | int, default: Any = None) -> Any:
        value: Any = self.props
        for key in path:
            if isinstance(value, Mapping) and isinstance(key, str):
                value = value.get(key)
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                return default
            if value is None:
                return default
        return value


ResourceCheck = Callable[[Subject, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[list[Subject], Mapping[str, Any]], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    """A policy: per resource (`types` + `check`) or over the whole stack (`stack_check`)."""

    name: str
    description: str
    mirrors: str
    types: tuple[str, ...] = ()
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config_schema: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.check is None) == (self.stack_check is None):
            raise ValueError(f"rule {self.name} needs exactly one of check or stack_check")
        if self.check is not None and not self.types:
            raise ValueError(f"resource rule {self.name} needs the types it applies to")

    def findings(self, subjects: list[Subject], params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(resource name, message) for every violation in `subjects`."""
        if self.stack_check is not None:
            return list(self.stack_check(subjects, params))
        assert self.check is not None
        return [
            (s.name, message) for s in subjects if s.type in self.types for message in self.check(s, params)
        ]


@dataclass(frozen=True)
class Violation:
    rule: str
    level: Level
    resource: str
    message: str


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM-style policy document given as JSON text or a mapping."""
    if not document:
        return []
    parsed = json.loads(document) if isinstance(document, str) else document
    statements = parsed.get("Statement", []) if isinstance(parsed, Mapping) else []
    return [dict(statements)] if isinstance(statements, Mapping) else [dict(s) for s in statements]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def referencing(subjects: list[Subject], type_token: str, prop: str) -> dict[str, list[Subject]]:
    """For each resource name, the `type_token` resources whose `prop` references it."""
    found: dict[str, list[Subject]] = {}
    for subject in subjects:
        if subject.type == type_token:
            for target in subject.refs.get(prop, ()):
                found.setdefault(target, []).append(subject)
    return found
