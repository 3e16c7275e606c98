"""Tags: every taggable resource carries the platform's required tags."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from policies.model import Rule, Subject

REQUIRED_TAGS = ("environment", "project", "owner", "cost-center")


@cache
def is_taggable(type_token: str) -> bool:
    """Whether a pulumi-aws resource type accepts tags, read from the SDK class's signature."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return False
    module = parts[1].split("/")[0]
    try:
        cls = getattr(importlib.import_module(f"pulumi_aws.{module}"), parts[2])
    except (ImportError, AttributeError):
        return False
    return "tags" in inspect.signature(cls._internal_init).parameters


def required_tags(subject: Subject, params: Mapping[str, Any]) -> Iterable[str]:
    if not is_taggable(subject.type):
        return
    tags = subject.get("tags", default={})
    missing = [tag for tag in params.get("tags", REQUIRED_TAGS) if not tags.get(tag)]
    if missing:
        yield f"missing required tags: {', '.join(missing)}"


def all_resources(subjects: list[Subject], params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for subject in subjects:
        for message in required_tags(subject, params):
            yield subject.name, message


RULES = (
    Rule(
        "required-tags",
        "Every taggable resource carries environment, project, owner and cost-center.",
        "AWS tagging best practices (cost allocation)",
        stack_check=all_resources,
        config_schema={"tags": {"type": "array", "items": {"type": "string"}}},
    ),
)
