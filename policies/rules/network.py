"""Networks: every VPC has flow logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, referencing

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"


def flow_logs(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    logged = referencing(subjects, FLOW_LOG, "vpcId")
    for vpc in (s for s in subjects if s.type == VPC):
        if vpc.name not in logged:
            yield vpc.name, "VPC has no flow log"


RULES = (
    Rule("vpc-flow-logs", "Every VPC has flow logs.", "CKV2_AWS_11, AVD-AWS-0178", stack_check=flow_logs),
)
