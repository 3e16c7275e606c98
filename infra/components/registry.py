"""Registry and tracking: SageMaker model package groups (with cross-account read for promotion), an
EventBridge rule on package state changes, and a managed MLflow tracking server."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child, policy_document, service_role

READ_ACTIONS = [
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
    "sagemaker:DescribeModelPackageGroup",
]


class Registry(pulumi.ComponentResource):
    groups: dict[str, aws.sagemaker.ModelPackageGroup]
    tracking_server: aws.sagemaker.MlflowTrackingServer
    group_prefix: str

    def __init__(
        self,
        ctx: StackContext,
        model_names: list[str],
        key_arn: pulumi.Input[str],
        artifacts_bucket: aws.s3.Bucket,
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:Registry", ctx.name("registry"), None, opts)
        self.group_prefix = ctx.name("")
        self.groups = {}
        for model in model_names:
            group = aws.sagemaker.ModelPackageGroup(
                ctx.name(model),
                model_package_group_name=ctx.name(model),
                model_package_group_description=f"{model} in {ctx.env}",
                tags=ctx.tags(model=model),
                opts=child(self),
            )
            self.groups[model] = group
            readers = ctx.config.registry.cross_account_readers
            if readers:
                aws.sagemaker.ModelPackageGroupPolicy(
                    ctx.name(f"{model}-cross-account"),
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=policy_document(
                        {
                            "Sid": "PromotionReaders",
                            "Effect": "Allow",
                            "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in readers]},
                            "Action": READ_ACTIONS,
                            "Resource": [
                                group.arn,
                                pulumi.Output.concat(
                                    ctx.arn("sagemaker", "model-package/"), ctx.name(model), "/*"
                                ),
                            ],
                        }
                    ),
                    opts=child(self),
                )
        state_changes = aws.cloudwatch.EventRule(
            ctx.name("model-package-state"),
            description="Model package approval changes in this environment's registry",
            event_pattern=pulumi.Output.all(
                *[g.model_package_group_name for g in self.groups.values()]
            ).apply(
                lambda names: json.dumps(
                    {
                        "source": ["aws.sagemaker"],
                        "detail-type": ["SageMaker Model Package State Change"],
                        "detail": {"ModelPackageGroupName": list(names)},
                    }
                )
            ),
            tags=ctx.tags(),
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            ctx.name("model-package-state-to-sns"), rule=state_changes.name, arn=topic_arn, opts=child(self)
        )

        tracking_role = service_role(
            ctx,
            self,
            "mlflow",
            "sagemaker.amazonaws.com",
            {
                "Sid": "Artifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": pulumi.Output.concat(artifacts_bucket.arn, "/mlflow/*"),
            },
            {
                "Sid": "ArtifactsBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": artifacts_bucket.arn,
            },
            {
                "Sid": "DataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
            },
            {
                "Sid": "RegisterModels",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateModelPackage",
                    "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                "Resource": [
                    ctx.arn("sagemaker", f"model-package-group/{self.group_prefix}*"),
                    ctx.arn("sagemaker", f"model-package/{self.group_prefix}*"),
                ],
            },
        )
        self.tracking_server = aws.sagemaker.MlflowTrackingServer(
            ctx.name("mlflow"),
            tracking_server_name=ctx.name("mlflow"),
            tracking_server_size=ctx.config.tracking.server_size,
            role_arn=tracking_role.arn,
            artifact_store_uri=pulumi.Output.concat("s3://", artifacts_bucket.bucket, "/mlflow"),
            automatic_model_registration=False,
            tags=ctx.tags(),
            opts=child(self),
        )
        self.register_outputs({"tracking_server_arn": self.tracking_server.arn})
