"""Every rule of the pack, grouped by service (one module each)."""

from policies.model import Rule
from policies.rules import (
    batch,
    cost,
    ecr,
    eks,
    fidelity,
    iam,
    kms,
    logs,
    network,
    rds,
    s3,
    sagemaker,
    sns,
    tags,
)

ALL_RULES: tuple[Rule, ...] = (
    *s3.RULES,
    *kms.RULES,
    *iam.RULES,
    *eks.RULES,
    *ecr.RULES,
    *batch.RULES,
    *sagemaker.RULES,
    *logs.RULES,
    *rds.RULES,
    *sns.RULES,
    *network.RULES,
    *tags.RULES,
    *cost.RULES,
    *fidelity.RULES,
)

BY_NAME = {rule.name: rule for rule in ALL_RULES}
if len(BY_NAME) != len(ALL_RULES):  # pragma: no cover - guards against a copy-pasted name
    raise RuntimeError("two rules share a name")
