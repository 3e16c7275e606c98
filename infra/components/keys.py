"""Keys: the environment's customer-managed KMS key (rotation, alias), used by everything that stores data."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child, policy_document


class Keys(pulumi.ComponentResource):
    key: aws.kms.Key
    alias: aws.kms.Alias

    def __init__(self, ctx: StackContext, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:platform:Keys", ctx.name("keys"), None, opts)
        logs_principal = f"logs.{ctx.region}.amazonaws.com"
        self.key = aws.kms.Key(
            ctx.name("key"),
            description=f"Data key of the {ctx.env} ML platform",
            enable_key_rotation=True,
            deletion_window_in_days=ctx.config.keys.deletion_window_days,
            policy=policy_document(
                {
                    "Sid": "AccountAdministration",
                    "Effect": "Allow",
                    "Principal": {"AWS": ctx.account_root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": logs_principal},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": ctx.arn("logs", "*")}},
                },
                {
                    "Sid": "NotificationsFromEventBridgeAndCloudWatch",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                },
            ),
            tags=ctx.tags(Name=ctx.name("key")),
            opts=child(self),
        )
        self.alias = aws.kms.Alias(
            ctx.name("key-alias"),
            name=f"alias/{ctx.name('data')}",
            target_key_id=self.key.key_id,
            opts=child(self),
        )
        self.register_outputs({"key_arn": self.key.arn})
