"""ECR repositories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, as_list

REPOSITORY = "aws:ecr/repository:Repository"


def scan_on_push(repo: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if repo.get("imageScanningConfiguration", "scanOnPush") is not True:
        yield "images are not scanned on push"


def immutable_tags(repo: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if repo.get("imageTagMutability") not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        yield "image tags are mutable"


def kms_encryption(repo: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    configs = as_list(repo.get("encryptionConfigurations"))
    if not any(c.get("encryptionType") == "KMS" and c.get("kmsKey") for c in configs):
        yield "repository is not encrypted with a customer-managed KMS key"


RULES = (
    Rule(
        "ecr-scan-on-push",
        "Images are scanned for vulnerabilities on push.",
        "CKV_AWS_163, AVD-AWS-0030",
        types=(REPOSITORY,),
        check=scan_on_push,
    ),
    Rule(
        "ecr-immutable-tags",
        "Image tags are immutable.",
        "CKV_AWS_51, AVD-AWS-0031",
        types=(REPOSITORY,),
        check=immutable_tags,
    ),
    Rule(
        "ecr-kms-encryption",
        "Repositories are encrypted with a customer-managed KMS key.",
        "CKV_AWS_136, AVD-AWS-0033",
        types=(REPOSITORY,),
        check=kms_encryption,
    ),
)
