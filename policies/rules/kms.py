"""KMS keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, as_list, policy_statements

KEY = "aws:kms/key:Key"


def rotation(key: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if key.get("enableKeyRotation") is not True:
        yield "automatic key rotation is off"


def _wildcard_principal(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in as_list(principal.get(kind)) for kind in ("AWS", "Service", "Federated"))
    return False


def no_wildcard_principal(key: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    for statement in policy_statements(key.get("policy")):
        if (
            statement.get("Effect") == "Allow"
            and _wildcard_principal(statement)
            and not statement.get("Condition")
        ):
            yield f"key policy statement {statement.get('Sid', '<no sid>')} allows any principal"


RULES = (
    Rule(
        "kms-key-rotation",
        "Customer-managed keys rotate automatically.",
        "CKV_AWS_7, AVD-AWS-0065",
        types=(KEY,),
        check=rotation,
    ),
    Rule(
        "kms-no-wildcard-principal",
        "Key policies do not allow `*` principals without a condition.",
        "CKV_AWS_33",
        types=(KEY,),
        check=no_wildcard_principal,
    ),
)
