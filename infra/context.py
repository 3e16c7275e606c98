"""What every component needs: the typed config, names derived once, the required tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig

PROJECT = "mlops-blueprint"


@dataclass(frozen=True)
class StackContext:
    config: StackConfig
    region: str
    account_id: str
    partition: str = "aws"

    @property
    def env(self) -> str:
        return self.config.environment

    def name(self, purpose: str) -> str:
        """The physical name of a resource: `mlops-<env>-<purpose>` (derived here, never written twice)."""
        return f"mlops-{self.env}-{purpose}"

    def bucket_name(self, purpose: str) -> str:
        suffix = f"-{self.config.name_suffix}" if self.config.name_suffix else ""
        return f"mlops-{self.env}-{purpose}{suffix}"

    def tags(self, **extra: str) -> dict[str, str]:
        """Required tags (environment, project, owner, cost-center) plus `extra`."""
        return {
            "environment": self.env,
            "project": PROJECT,
            "owner": self.config.owner,
            "cost-center": self.config.cost_center,
            "managed-by": "pulumi",
            **extra,
        }

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id if account else ''}:{resource}"

    @property
    def glue_database(self) -> str:
        """The lake's Glue database (Glue names take underscores, not hyphens)."""
        return self.name("lake").replace("-", "_")

    def glue_table_arns(self, database: str) -> list[str]:
        """What a grant on a Glue database's tables names: the catalog, the database, its tables."""
        return [
            self.arn("glue", "catalog"),
            self.arn("glue", f"database/{database}"),
            self.arn("glue", f"table/{database}/*"),
        ]

    def lake_catalog_grant(self, sid: str) -> dict[str, object]:
        """The statement that lets a role read the lake's Glue tables and commit to them."""
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Action": [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
            ],
            "Resource": self.glue_table_arns(self.glue_database),
        }

    @property
    def account_root(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"


def policy_document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """An IAM policy document as JSON; statements may hold Outputs (ARNs of other resources)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def assume_role_policy(service: str) -> pulumi.Output[str]:
    """A trust policy letting an AWS service assume the role."""
    return policy_document({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


def managed_role(
    ctx: StackContext, parent: pulumi.Resource, purpose: str, service: str, *policy_arns: str
) -> aws.iam.Role:
    """A role that `service` assumes, with AWS-managed policies attached.

    Logical names: `mlops-<env>-<purpose>-role` and `mlops-<env>-<purpose>-managed-<n>`.
    """
    role = aws.iam.Role(
        ctx.name(f"{purpose}-role"),
        assume_role_policy=assume_role_policy(service),
        tags=ctx.tags(),
        opts=child(parent),
    )
    for index, arn in enumerate(policy_arns):
        aws.iam.RolePolicyAttachment(
            ctx.name(f"{purpose}-managed-{index}"), role=role.name, policy_arn=arn, opts=child(parent)
        )
    return role


def service_role(
    ctx: StackContext, parent: pulumi.Resource, purpose: str, service: str, *statements: dict[str, Any]
) -> aws.iam.Role:
    """A role that `service` assumes, with one inline policy made of `statements`.

    Logical names: `mlops-<env>-<purpose>-role` and `mlops-<env>-<purpose>-policy`.
    """
    role = aws.iam.Role(
        ctx.name(f"{purpose}-role"),
        assume_role_policy=policy_document(
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ),
        tags=ctx.tags(),
        opts=child(parent),
    )
    if statements:
        aws.iam.RolePolicy(
            ctx.name(f"{purpose}-policy"),
            role=role.id,
            policy=policy_document(*statements),
            opts=child(parent),
        )
    return role
