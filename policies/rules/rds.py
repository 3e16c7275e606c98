"""RDS (the self-hosted Prefect server's Postgres, issue #8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"


def encrypted(db: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if db.get("storageEncrypted") is not True:
        yield "database storage is not encrypted"


def not_public(db: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if db.get("publiclyAccessible") is True:
        yield "database is publicly accessible"


def backups(db: Subject, params: Mapping[str, Any]) -> Iterable[str]:
    days = db.get("backupRetentionPeriod", default=0)
    minimum = params.get("minimumDays", 7)
    if days < minimum:
        yield f"automated backups kept {days:g} days, fewer than {minimum}"


def multi_az(db: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if db.type == INSTANCE and db.get("multiAz") is not True:
        yield "database runs in a single availability zone"


RULES = (
    Rule(
        "rds-storage-encrypted",
        "Database storage is encrypted.",
        "CKV_AWS_16, AVD-AWS-0080",
        types=(INSTANCE, CLUSTER),
        check=encrypted,
    ),
    Rule(
        "rds-not-public",
        "Databases are not publicly accessible.",
        "CKV_AWS_17, AVD-AWS-0180",
        types=(INSTANCE,),
        check=not_public,
    ),
    Rule(
        "rds-backups",
        "Automated backups are kept for the environment's minimum number of days.",
        "CKV_AWS_133, AVD-AWS-0077",
        types=(INSTANCE, CLUSTER),
        check=backups,
        config_schema={"minimumDays": {"type": "integer", "default": 7}},
    ),
    Rule(
        "rds-multi-az",
        "Database instances are multi-AZ (mandatory in prod).",
        "CKV_AWS_157",
        types=(INSTANCE,),
        check=multi_az,
    ),
)
