"""The platform contract of an AWS environment: built with the same typed model the pipelines read,
published as the SSM parameter the flows load and as a stack output."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child
from mlops.contract import (
    AwsArtifacts,
    AwsCompute,
    AwsFeatureStore,
    AwsLake,
    AwsMonitoring,
    AwsQuery,
    AwsRegistry,
    AwsServing,
    AwsTracking,
    Orchestrator,
    PlatformContract,
)


def contract_parameter_name(env: str) -> str:
    """Must match `mlops.settings.EnvironmentSettings.contract_parameter`'s default."""
    return f"/mlops/{env}/platform-contract"


class ContractExport(pulumi.ComponentResource):
    json: pulumi.Output[str]
    parameter: aws.ssm.Parameter

    def __init__(
        self,
        ctx: StackContext,
        values: dict[str, pulumi.Input[Any]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:Contract", ctx.name("contract"), None, opts)

        def render(resolved: dict[str, Any]) -> str:
            key = resolved["kms_key_arn"]
            contract = PlatformContract(
                environment=ctx.env,
                region=ctx.region,
                lake=AwsLake(
                    raw_bucket=resolved["raw_bucket"],
                    curated_bucket=resolved["curated_bucket"],
                    quarantine_bucket=resolved["quarantine_bucket"],
                    glue_database=resolved["glue_database"],
                    kms_key_id=key,
                ),
                artifacts=AwsArtifacts(bucket=resolved["artifacts_bucket"], kms_key_id=key),
                feature_store=AwsFeatureStore(
                    offline_namespace="features",
                    feature_group_prefix=resolved["feature_group_prefix"],
                    online_enabled=ctx.config.feature_store.online_enabled,
                    kms_key_id=key,
                ),
                tracking=AwsTracking(tracking_server_arn=resolved["tracking_server_arn"]),
                registry=AwsRegistry(model_package_group_prefix=resolved["model_package_group_prefix"]),
                compute=AwsCompute(
                    gpu_job_queue=resolved["gpu_job_queue"],
                    cpu_job_queue=resolved["cpu_job_queue"],
                    training_job_definition=resolved["training_job_definition"],
                    distributed_job_queue=resolved.get("distributed_job_queue") or None,
                    distributed_job_definition=resolved.get("distributed_job_definition") or None,
                    fanout_job_definition=resolved["fanout_job_definition"],
                    image_uri=resolved["training_image_uri"],
                ),
                monitoring=AwsMonitoring(
                    namespace=resolved["metrics_namespace"],
                    alarm_names=resolved["alarm_names"],
                    sns_topic_arn=resolved["sns_topic_arn"],
                ),
                serving=AwsServing(
                    endpoint_name=resolved["endpoint_name"],
                    execution_role_arn=resolved["endpoint_role_arn"],
                    image_uri=resolved["serving_image_uri"],
                    data_capture_uri=f"s3://{resolved['curated_bucket']}/data-capture",
                    kms_key_id=key,
                ),
                orchestrator=Orchestrator(
                    work_pool=resolved["work_pool"],
                    api_url=resolved["api_url"],
                    cluster_name=resolved["cluster_name"],
                ),
                query=AwsQuery(
                    workgroup=resolved["query_workgroup"], results_location=resolved["query_results_location"]
                ),
            )
            return contract.to_json()

        self.json = pulumi.Output.all(**values).apply(render)
        self.parameter = aws.ssm.Parameter(
            ctx.name("platform-contract"),
            name=contract_parameter_name(ctx.env),
            type="String",
            tier="Standard",
            description=f"Platform contract of the {ctx.env} environment (read by the pipelines at flow start)",
            value=self.json,
            tags=ctx.tags(),
            opts=child(self),
        )
        self.register_outputs({"platformContract": self.json})
