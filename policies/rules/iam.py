"""IAM: no wildcard actions, no unconstrained writes on `*`, no AdministratorAccess."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, as_list, policy_statements

POLICY_DOCUMENTS = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
ROLE = "aws:iam/role:Role"
ADMIN_POLICIES = ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/PowerUserAccess")
# Actions that AWS does not scope to resources: "*" is the only valid resource for them.
NO_RESOURCE_LEVEL = {
    "ecr:getauthorizationtoken",
    "cloudwatch:putmetricdata",
    "logs:describeloggroups",
    "sts:getcalleridentity",
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
}
READ_PREFIXES = ("get", "list", "describe", "batchget", "head", "query", "scan", "search", "select")


def _allow_statements(subject: Subject) -> list[Mapping[str, Any]]:
    return [s for s in policy_statements(subject.get("policy")) if s.get("Effect") == "Allow"]


def no_wildcard_actions(subject: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    for statement in _allow_statements(subject):
        wild = [a for a in as_list(statement.get("Action")) if a == "*" or str(a).endswith(":*")]
        if wild:
            yield f"statement {statement.get('Sid', '<no sid>')} allows {', '.join(map(str, wild))}"


def _is_write(action: str) -> bool:
    verb = action.split(":", 1)[-1].lower()
    return not verb.startswith(READ_PREFIXES)


def no_unconstrained_writes(subject: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    for statement in _allow_statements(subject):
        if "*" not in as_list(statement.get("Resource")) or statement.get("Condition"):
            continue
        writes = [
            a
            for a in as_list(statement.get("Action"))
            if _is_write(str(a)) and str(a).lower() not in NO_RESOURCE_LEVEL
        ]
        if writes:
            yield f"statement {statement.get('Sid', '<no sid>')} allows {', '.join(map(str, writes))} on every resource"


def no_admin_access(subject: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    attached = as_list(subject.get("policyArn")) + as_list(subject.get("managedPolicyArns"))
    for arn in attached:
        if arn in ADMIN_POLICIES:
            yield f"attaches {arn}"


RULES = (
    Rule(
        "iam-no-wildcard-actions",
        "IAM policies allow no `*` or `service:*` actions.",
        "CKV_AWS_63, AVD-AWS-0057",
        types=POLICY_DOCUMENTS,
        check=no_wildcard_actions,
    ),
    Rule(
        "iam-no-wildcard-resource-writes",
        "Write actions are scoped to resources (or constrained by a condition); actions without resource-level permissions are exempt.",
        "CKV_AWS_111, CKV_AWS_290",
        types=POLICY_DOCUMENTS,
        check=no_unconstrained_writes,
    ),
    Rule(
        "iam-no-admin-access",
        "No role, user or group gets AdministratorAccess or PowerUserAccess.",
        "CKV_AWS_274",
        types=(*ATTACHMENTS, ROLE),
        check=no_admin_access,
    ),
)
