"""The query engine feature views run on at scale: an Athena workgroup (engine v3, Trino SQL).

Athena reads the lake's Iceberg tables where they are (Glue + S3) and bills per byte scanned, so a
feature build over terabytes needs no cluster and costs nothing between runs; EMR Serverless or Glue
Spark would add an application, a job role and minutes of start-up for the same window functions.
The workgroup enforces its settings (clients cannot turn off encryption or the scan cutoff), writes
results SSE-KMS with the environment's key to the lake's query-results bucket, expected owner pinned,
and publishes CloudWatch metrics.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child

ENGINE_VERSION = "Athena engine version 3"
RESULTS_PREFIX = "features"


class QueryEngine(pulumi.ComponentResource):
    workgroup: aws.athena.Workgroup
    results_location: pulumi.Output[str]

    def __init__(
        self,
        ctx: StackContext,
        key_arn: pulumi.Input[str],
        results_bucket: aws.s3.Bucket,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:QueryEngine", ctx.name("query-engine"), None, opts)
        self.results_location = pulumi.Output.concat("s3://", results_bucket.bucket, f"/{RESULTS_PREFIX}")
        self.workgroup = aws.athena.Workgroup(
            ctx.name("features"),
            name=ctx.name("features"),
            description=f"Feature views of the {ctx.env} ML platform over the Iceberg lake",
            state="ENABLED",
            force_destroy=ctx.config.lake.force_destroy,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=ctx.config.query.bytes_scanned_cutoff_gb * 1024**3,
                engine_version=aws.athena.WorkgroupConfigurationEngineVersionArgs(
                    selected_engine_version=ENGINE_VERSION
                ),
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat(self.results_location, "/athena/"),
                    expected_bucket_owner=ctx.account_id,
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=key_arn
                    ),
                ),
            ),
            tags=ctx.tags(),
            opts=child(self),
        )
        self.register_outputs({"workgroup": self.workgroup.name})

    def permissions(
        self, ctx: StackContext, results_bucket_arn: pulumi.Input[str]
    ) -> list[dict[str, object]]:
        """What a flow needs to run queries here, beyond the lake's tables and objects (granted apart):
        Athena writes an UNLOAD's files with the caller's permissions, in multipart uploads."""
        return [
            {
                "Sid": "QueryEngine",
                "Effect": "Allow",
                "Action": [
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                ],
                "Resource": ctx.arn("athena", f"workgroup/{ctx.name('features')}"),
            },
            {
                "Sid": "QueryEnginePartitions",
                "Effect": "Allow",
                "Action": ["glue:GetPartitions"],
                "Resource": ctx.glue_table_arns(ctx.glue_database),
            },
            {
                "Sid": "QueryResultUploads",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": pulumi.Output.concat(results_bucket_arn, "/*"),
            },
            {
                "Sid": "QueryResultBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucketMultipartUploads"],
                "Resource": results_bucket_arn,
            },
        ]
