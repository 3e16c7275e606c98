"""CloudWatch Logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def kms(group: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if not group.get("kmsKeyId"):
        yield "log group is not encrypted with a KMS key"


def retention(group: Subject, params: Mapping[str, Any]) -> Iterable[str]:
    days = group.get("retentionInDays", default=0)
    minimum = params.get("minimumDays", 1)
    if not days:
        yield "log group keeps logs forever (no retention set)"
    elif days < minimum:
        yield f"retention of {days:g} days is below the environment's minimum of {minimum} days"


RULES = (
    Rule(
        "logs-kms-encryption",
        "Log groups are encrypted with a KMS key.",
        "CKV_AWS_158, AVD-AWS-0017",
        types=(LOG_GROUP,),
        check=kms,
    ),
    Rule(
        "logs-retention",
        "Log groups have a retention period, at least the environment's minimum.",
        "CKV_AWS_66, CKV_AWS_338",
        types=(LOG_GROUP,),
        check=retention,
        config_schema={"minimumDays": {"type": "integer", "default": 1}},
    ),
)
