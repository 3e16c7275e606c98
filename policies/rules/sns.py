"""SNS topics (alerts carry resource names and metrics: encrypt them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject

TOPIC = "aws:sns/topic:Topic"


def kms(topic: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if not topic.get("kmsMasterKeyId"):
        yield "topic is not encrypted with a KMS key"


RULES = (
    Rule(
        "sns-topic-kms",
        "SNS topics are encrypted with a KMS key.",
        "CKV_AWS_26, AVD-AWS-0095",
        types=(TOPIC,),
        check=kms,
    ),
)
