"""Feature store: one SageMaker feature group per feature view of the use case, generated from the
same feature definitions the pipelines use (imported from `pipelines.usecase`, not copied)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child, service_role
from pipelines.features.compute import FEATURE_TIME
from pipelines.usecase import UseCase

SAGEMAKER_TYPES = {"integral": "Integral", "fractional": "Fractional", "string": "String"}


def feature_definitions(usecase: UseCase) -> list[tuple[str, str]]:
    """(name, SageMaker type) of every feature group column: entity key, event time, features."""
    columns = [(usecase.dataset.entity_key, "String"), (FEATURE_TIME, "String")]
    return columns + [(name, SAGEMAKER_TYPES[kind]) for name, kind in usecase.value_types().items()]


class FeatureStore(pulumi.ComponentResource):
    feature_groups: list[aws.sagemaker.FeatureGroup]
    prefix: str

    def __init__(
        self,
        ctx: StackContext,
        usecase: UseCase,
        key_arn: pulumi.Input[str],
        curated_bucket: aws.s3.Bucket,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:FeatureStore", ctx.name("feature-store"), None, opts)
        self.prefix = ctx.name("")
        offline_prefix = "feature-store"
        role = service_role(
            ctx,
            self,
            "feature-store",
            "sagemaker.amazonaws.com",
            {
                "Sid": "OfflineStore",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": pulumi.Output.concat(curated_bucket.arn, f"/{offline_prefix}/*"),
            },
            {
                "Sid": "OfflineStoreBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": curated_bucket.arn,
            },
            {
                "Sid": "DataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": key_arn,
            },
            {
                "Sid": "GlueTables",
                "Effect": "Allow",
                "Action": ["glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetDatabase"],
                "Resource": ctx.glue_table_arns("sagemaker_featurestore"),
            },
        )
        view = usecase.features
        online = ctx.config.feature_store.online_enabled
        self.feature_groups = [
            aws.sagemaker.FeatureGroup(
                ctx.name(view.name.replace("_", "-")),
                feature_group_name=ctx.name(view.name.replace("_", "-")),
                record_identifier_feature_name=usecase.dataset.entity_key,
                event_time_feature_name=FEATURE_TIME,
                role_arn=role.arn,
                feature_definitions=[
                    aws.sagemaker.FeatureGroupFeatureDefinitionArgs(feature_name=name, feature_type=kind)
                    for name, kind in feature_definitions(usecase)
                ],
                offline_store_config=aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                    table_format="Iceberg",
                    s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                        s3_uri=pulumi.Output.concat("s3://", curated_bucket.bucket, f"/{offline_prefix}"),
                        kms_key_id=key_arn,
                    ),
                ),
                online_store_config=aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
                    enable_online_store=True,
                    security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(
                        kms_key_id=key_arn
                    ),
                )
                if online
                else None,
                tags=ctx.tags(),
                opts=child(self),
            )
        ]
        self.register_outputs({"feature_groups": [g.feature_group_name for g in self.feature_groups]})
