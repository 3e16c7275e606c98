"""S3. In pulumi-aws 7 encryption, versioning, public access block, logging and lifecycle are
resources of their own, so these rules look across the stack for the one that names each bucket."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject, policy_statements, referencing

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _buckets(subjects: list[Subject]) -> list[Subject]:
    return [s for s in subjects if s.type == BUCKET]


def is_access_log_bucket(bucket: Subject) -> bool:
    """S3 server access logging only accepts SSE-S3 targets; such buckets are tagged purpose=access-logs."""
    return bucket.get("tags", "purpose") == "access-logs"


def kms_encryption(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    configs = referencing(subjects, ENCRYPTION, "bucket")
    for bucket in _buckets(subjects):
        algorithms = {
            rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
            for config in configs.get(bucket.name, [])
            for rule in config.get("rules", default=[])
        }
        if not algorithms:
            yield bucket.name, "bucket has no default server-side encryption"
        elif is_access_log_bucket(bucket):
            if not algorithms & {"AES256", "aws:kms"}:
                yield bucket.name, "access-log bucket must use SSE-S3 (AES256)"
        elif "aws:kms" not in algorithms:
            yield bucket.name, f"bucket is encrypted with {sorted(a for a in algorithms if a)}, not a KMS key"


def versioning(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    configs = referencing(subjects, VERSIONING, "bucket")
    for bucket in _buckets(subjects):
        if not any(
            c.get("versioningConfiguration", "status") == "Enabled" for c in configs.get(bucket.name, [])
        ):
            yield bucket.name, "bucket versioning is not enabled"


def public_access_block(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    blocks = referencing(subjects, PUBLIC_ACCESS_BLOCK, "bucket")
    for bucket in _buckets(subjects):
        found = blocks.get(bucket.name, [])
        if not found:
            yield bucket.name, "bucket has no public access block"
            continue
        missing = [flag for flag in FLAGS if not any(b.get(flag) is True for b in found)]
        if missing:
            yield bucket.name, f"public access block leaves {', '.join(missing)} off"


def _denies_insecure_transport(policy: Subject) -> bool:
    for statement in policy_statements(policy.get("policy")):
        condition = statement.get("Condition", {}).get("Bool", {})
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def tls_only(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    policies = referencing(subjects, POLICY, "bucket")
    for bucket in _buckets(subjects):
        if not any(_denies_insecure_transport(p) for p in policies.get(bucket.name, [])):
            yield bucket.name, "no bucket policy denies requests without TLS (aws:SecureTransport=false)"


def access_logging(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    logged = referencing(subjects, LOGGING, "bucket")
    for bucket in _buckets(subjects):
        if not is_access_log_bucket(bucket) and bucket.name not in logged:
            yield bucket.name, "bucket has no server access logging"


def abort_multipart(subjects: list[Subject], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    lifecycles = referencing(subjects, LIFECYCLE, "bucket")
    for bucket in _buckets(subjects):
        rules = [r for c in lifecycles.get(bucket.name, []) for r in c.get("rules", default=[])]
        if not any(r.get("status") == "Enabled" and r.get("abortIncompleteMultipartUpload") for r in rules):
            yield bucket.name, "no enabled lifecycle rule aborts incomplete multipart uploads"


RULES = (
    Rule(
        "s3-bucket-kms-encryption",
        "Buckets are encrypted by default with a KMS key (access-log buckets: SSE-S3).",
        "CKV_AWS_145, AVD-AWS-0132",
        stack_check=kms_encryption,
    ),
    Rule(
        "s3-bucket-versioning",
        "Bucket versioning is enabled.",
        "CKV_AWS_21, AVD-AWS-0090",
        stack_check=versioning,
    ),
    Rule(
        "s3-public-access-block",
        "A public access block sets all four flags.",
        "CKV_AWS_53-56, AVD-AWS-0086/0087/0091/0093",
        stack_check=public_access_block,
    ),
    Rule(
        "s3-tls-only",
        "A bucket policy denies requests made without TLS.",
        "AWS FSBP S3.5 (require SSL)",
        stack_check=tls_only,
    ),
    Rule(
        "s3-access-logging",
        "Server access logging is on (except on the access-log bucket itself).",
        "CKV_AWS_18, AVD-AWS-0089",
        stack_check=access_logging,
    ),
    Rule(
        "s3-abort-incomplete-multipart",
        "A lifecycle rule aborts incomplete multipart uploads.",
        "CKV_AWS_300",
        stack_check=abort_multipart,
    ),
)
