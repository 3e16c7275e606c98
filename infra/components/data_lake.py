"""Data lake: raw, curated, artifacts, quarantine and access-log buckets, and the Glue database.

Every data bucket: KMS encryption, versioning, all four public-access blocks, a TLS-only bucket
policy, access logging and lifecycle rules. The access-log bucket uses SSE-S3, the only default
encryption S3 server access logging accepts for its target.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.config import BucketOverride
from infra.context import StackContext, child, policy_document

DataBucket = Literal["raw", "curated", "artifacts", "quarantine", "query-results"]
DATA_BUCKETS: tuple[DataBucket, ...] = ("raw", "curated", "artifacts", "quarantine", "query-results")


class DataLake(pulumi.ComponentResource):
    buckets: dict[str, aws.s3.Bucket]
    glue_database: aws.glue.CatalogDatabase

    def __init__(
        self, ctx: StackContext, key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:platform:DataLake", ctx.name("lake"), None, opts)
        self.ctx, self.key_arn = ctx, key_arn
        cfg = ctx.config.lake
        logs = self._bucket("access-logs")
        self._harden("access-logs", logs, BucketOverride(), sse_algorithm="AES256")
        self._lifecycle("access-logs", logs, expire_days=cfg.access_log_expiry_days)
        aws.s3.BucketPolicy(
            ctx.name("access-logs-policy"),
            bucket=logs.id,
            policy=policy_document(
                _deny_insecure_transport(logs),
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(logs.arn, "/*"),
                    "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account_id}},
                },
            ),
            opts=child(self),
        )

        self.buckets = {"access-logs": logs}
        for purpose in DATA_BUCKETS:
            bucket = self._bucket(purpose)
            override = cfg.bucket_overrides.get(purpose, BucketOverride())
            self._harden(purpose, bucket, override, sse_algorithm="aws:kms")
            aws.s3.BucketPolicy(
                ctx.name(f"{purpose}-policy"),
                bucket=bucket.id,
                policy=policy_document(_deny_insecure_transport(bucket)),
                opts=child(self),
            )
            aws.s3.BucketLogging(
                ctx.name(f"{purpose}-logging"),
                bucket=bucket.id,
                target_bucket=logs.id,
                target_prefix=f"{purpose}/",
                opts=child(self),
            )
            if purpose == "raw":
                self._lifecycle(purpose, bucket, transition_days=cfg.raw_transition_days)
            elif purpose == "quarantine":
                self._lifecycle(purpose, bucket, expire_days=cfg.quarantine_expiry_days)
            elif purpose == "query-results":  # read back once by the run that asked for them
                self._lifecycle(purpose, bucket, expire_days=cfg.query_results_expiry_days)
            else:
                self._lifecycle(purpose, bucket)
            self.buckets[purpose] = bucket

        self.glue_database = aws.glue.CatalogDatabase(
            ctx.name("glue-db"),
            name=ctx.glue_database,
            description=f"Iceberg tables of the {ctx.env} ML platform",
            location_uri=pulumi.Output.concat("s3://", self.buckets["curated"].bucket, "/iceberg"),
            tags=ctx.tags(),
            opts=child(self),
        )
        self.register_outputs({name: b.bucket for name, b in self.buckets.items()})

    def _bucket(self, purpose: str) -> aws.s3.Bucket:
        return aws.s3.Bucket(
            self.ctx.name(purpose),
            bucket=self.ctx.bucket_name(purpose),
            force_destroy=self.ctx.config.lake.force_destroy,
            tags=self.ctx.tags(Name=self.ctx.bucket_name(purpose), purpose=purpose),
            opts=child(self),
        )

    def _harden(
        self, purpose: str, bucket: aws.s3.Bucket, override: BucketOverride, sse_algorithm: str
    ) -> None:
        ctx = self.ctx
        aws.s3.BucketOwnershipControls(
            ctx.name(f"{purpose}-ownership"),
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child(self),
        )
        if override.block_public_access:
            aws.s3.BucketPublicAccessBlock(
                ctx.name(f"{purpose}-public-access"),
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child(self),
            )
        if override.encryption:
            kms = sse_algorithm == "aws:kms"
            aws.s3.BucketServerSideEncryptionConfiguration(
                ctx.name(f"{purpose}-encryption"),
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm=sse_algorithm, kms_master_key_id=self.key_arn if kms else None
                        ),
                        bucket_key_enabled=kms,
                    )
                ],
                opts=child(self),
            )
        aws.s3.BucketVersioning(
            ctx.name(f"{purpose}-versioning"),
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child(self),
        )

    def _lifecycle(
        self,
        purpose: str,
        bucket: aws.s3.Bucket,
        transition_days: int | None = None,
        expire_days: int | None = None,
    ) -> None:
        cfg = self.ctx.config.lake
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=cfg.abort_multipart_days
                ),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=cfg.noncurrent_version_expiry_days
                ),
            )
        ]
        if transition_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="transition-old-data",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=transition_days, storage_class=cfg.raw_transition_storage_class
                        )
                    ],
                )
            )
        if expire_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
                )
            )
        aws.s3.BucketLifecycleConfiguration(
            self.ctx.name(f"{purpose}-lifecycle"), bucket=bucket.id, rules=rules, opts=child(self)
        )


def _deny_insecure_transport(bucket: aws.s3.Bucket) -> dict[str, object]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
