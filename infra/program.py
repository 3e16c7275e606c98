"""Composes the platform's components for one environment and exports its contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.batch_compute import BatchCompute
from infra.components.contract import ContractExport
from infra.components.data_lake import DataLake
from infra.components.feature_store import FeatureStore
from infra.components.keys import Keys
from infra.components.monitoring import Monitoring
from infra.components.network import Network
from infra.components.orchestrator import Orchestrator
from infra.components.query_engine import QueryEngine
from infra.components.registry import Registry
from infra.config import CONFIG_KEY, CONFIG_NAMESPACE, StackConfig, parse_stack_config
from infra.context import StackContext
from mlops.settings import load_settings
from pipelines.usecase import load_usecase


@dataclass
class Platform:
    ctx: StackContext
    keys: Keys
    network: Network
    lake: DataLake
    monitoring: Monitoring
    compute: BatchCompute
    feature_store: FeatureStore
    registry: Registry
    orchestrator: Orchestrator
    contract: ContractExport
    query_engine: QueryEngine

    @property
    def contract_json(self) -> pulumi.Output[str]:
        return self.contract.json


def build(config: StackConfig) -> Platform:
    """Declare every resource of one environment; the same code runs under `pulumi up` and the offline plan."""
    region = aws.config.region or "eu-west-1"
    ctx = StackContext(config=config, region=region, account_id=aws.get_caller_identity().account_id)
    pipeline = load_settings(config.environment).pipeline
    usecase = load_usecase(pipeline.usecase_path())

    keys = Keys(ctx)
    key_arn = keys.key.arn
    network = Network(ctx, key_arn)
    lake = DataLake(ctx, key_arn)
    monitoring = Monitoring(ctx, key_arn)
    data_buckets = [lake.buckets[name].arn for name in ("raw", "curated", "artifacts", "quarantine")]
    compute = BatchCompute(
        ctx,
        key_arn,
        network.vpc.id,
        network.private_subnet_ids,
        data_buckets,
        monitoring.log_groups["batch"].name,
        monitoring.log_groups["batch"].arn,
    )
    monitoring.add_endpoint_role(
        ctx,
        key_arn,
        lake.buckets["artifacts"].arn,
        lake.buckets["curated"].arn,
        compute.repositories["serving"].arn,
    )
    feature_store = FeatureStore(ctx, usecase, key_arn, lake.buckets["curated"])
    results = lake.buckets["query-results"]
    query_engine = QueryEngine(ctx, key_arn, results)
    registry = Registry(
        ctx,
        [pipeline.model_name or usecase.model_name],
        key_arn,
        lake.buckets["artifacts"],
        monitoring.topic.arn,
    )
    orchestrator = Orchestrator(
        ctx,
        key_arn,
        network.private_subnet_ids,
        network.vpc.id,
        [
            *flow_permissions(
                ctx,
                key_arn,
                [*data_buckets, results.arn],
                compute,
                registry.group_prefix,
                monitoring.namespace,
            ),
            *serving_permissions(ctx, key_arn, monitoring.endpoint_name, monitoring.endpoint_role.arn),
            *query_engine.permissions(ctx, results.arn),
        ],
    )
    contract = ContractExport(
        ctx,
        {
            "kms_key_arn": key_arn,
            "raw_bucket": lake.buckets["raw"].bucket,
            "curated_bucket": lake.buckets["curated"].bucket,
            "quarantine_bucket": lake.buckets["quarantine"].bucket,
            "artifacts_bucket": lake.buckets["artifacts"].bucket,
            "glue_database": lake.glue_database.name,
            "query_workgroup": query_engine.workgroup.name,
            "query_results_location": query_engine.results_location,
            "feature_group_prefix": feature_store.prefix,
            "tracking_server_arn": registry.tracking_server.arn,
            "model_package_group_prefix": registry.group_prefix,
            "gpu_job_queue": compute.gpu_queue.name,
            "cpu_job_queue": compute.cpu_queue.name,
            "training_job_definition": compute.training_job_definition.name,
            "fanout_job_definition": compute.fanout_job_definition.name,
            "distributed_job_queue": compute.distributed.queue.name if compute.distributed else "",
            "distributed_job_definition": (
                compute.distributed.job_definition.name if compute.distributed else ""
            ),
            "metrics_namespace": monitoring.namespace,
            "alarm_names": monitoring.alarm_names,
            "sns_topic_arn": monitoring.topic.arn,
            "endpoint_name": monitoring.endpoint_name,
            "work_pool": orchestrator.work_pool,
            "api_url": orchestrator.api_url,
            "cluster_name": orchestrator.cluster.name,
            "endpoint_role_arn": monitoring.endpoint_role.arn,
            "training_image_uri": pulumi.Output.concat(
                compute.repositories["training"].repository_url, ":", config.compute.image_tag
            ),
            "serving_image_uri": pulumi.Output.concat(
                compute.repositories["serving"].repository_url, ":", config.compute.image_tag
            ),
        },
    )
    pulumi.export("platformContract", contract.json)
    pulumi.export("contractParameter", contract.parameter.name)
    return Platform(
        ctx,
        keys,
        network,
        lake,
        monitoring,
        compute,
        feature_store,
        registry,
        orchestrator,
        contract,
        query_engine,
    )


def distributed_submit_targets(compute: BatchCompute) -> list[pulumi.Output[str]]:
    """The multi-node queue and job definition (revision-less and any revision), when provisioned."""
    if compute.distributed is None:
        return []
    definition = compute.distributed.job_definition
    return [
        compute.distributed.queue.arn,
        definition.arn_prefix,
        pulumi.Output.concat(definition.arn_prefix, ":*"),
    ]


def serving_permissions(
    ctx: StackContext, key_arn: pulumi.Input[str], endpoint_name: str, endpoint_role_arn: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """What the flows need to deploy to the endpoint and run experiments on it (the calls of
    `pipelines.adapters.aws.endpoint` and the capture loader): its models and configs by name
    prefix, the endpoint itself, handing SageMaker the endpoint's role, and the key its volumes use."""
    return [
        {
            "Sid": "Endpoint",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
            ],
            "Resource": [
                ctx.arn("sagemaker", f"model/{endpoint_name}-*"),
                ctx.arn("sagemaker", f"endpoint-config/{endpoint_name}-*"),
                ctx.arn("sagemaker", f"endpoint/{endpoint_name}"),
            ],
        },
        {
            "Sid": "PassEndpointRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": endpoint_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
        {
            # The endpoint config names the key for the instances' volumes; SageMaker takes a grant on it.
            "Sid": "EndpointVolumeKey",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def flow_permissions(
    ctx: StackContext,
    key_arn: pulumi.Input[str],
    data_buckets: list[pulumi.Output[str]],
    compute: BatchCompute,
    group_prefix: str,
    namespace: str,
) -> list[dict[str, Any]]:
    """What the flows (the Prefect worker's pods) may do: the lake, the registry, Batch, metrics."""
    return [
        {
            "Sid": "Lake",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [pulumi.Output.concat(b, "/*") for b in data_buckets],
        },
        {
            "Sid": "LakeBuckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": data_buckets,
        },
        ctx.lake_catalog_grant("Catalog"),
        {
            "Sid": "DataKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": key_arn,
        },
        {
            "Sid": "Contract",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": ctx.arn("ssm", f"parameter/mlops/{ctx.env}/platform-contract"),
        },
        {
            "Sid": "Registry",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModelPackage",
                "sagemaker:CreateModelPackageGroup",
                "sagemaker:UpdateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
            ],
            "Resource": [
                ctx.arn("sagemaker", f"model-package-group/{group_prefix}*"),
                ctx.arn("sagemaker", f"model-package/{group_prefix}*"),
            ],
        },
        {
            # The adapter submits by definition name, which IAM evaluates as the revision-less ARN;
            # `:*` covers submissions that name a revision. A definition's `arn` carries one revision
            # (`...:training:1`) and stops matching at the next. SubmitJob also checks the job itself.
            "Sid": "Training",
            "Effect": "Allow",
            "Action": ["batch:SubmitJob"],
            "Resource": [
                compute.gpu_queue.arn,
                compute.cpu_queue.arn,
                compute.training_job_definition.arn_prefix,
                pulumi.Output.concat(compute.training_job_definition.arn_prefix, ":*"),
                compute.fanout_job_definition.arn_prefix,
                pulumi.Output.concat(compute.fanout_job_definition.arn_prefix, ":*"),
                ctx.arn("batch", "job/*"),
                *distributed_submit_targets(compute),
            ],
        },
        {"Sid": "TrainingStatus", "Effect": "Allow", "Action": ["batch:DescribeJobs"], "Resource": "*"},
        {
            "Sid": "Metrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
        },
    ]


def build_from_pulumi_config() -> Platform:
    """Entry point under the Pulumi engine: read and validate the stack config, then build."""
    raw = pulumi.Config(CONFIG_NAMESPACE).get_object(CONFIG_KEY)
    return build(parse_stack_config(raw, f"stack {pulumi.get_stack()}"))
