"""Multi-node data-parallel training on AWS Batch: a multi-node parallel job definition, and the
on-demand GPU compute it needs (Batch runs these jobs on EC2 only, never Spot; one instance type;
a cluster placement group keeps the nodes in one Availability Zone, close together).

Every node runs `python -m pipelines.training.launch SPEC_URI`, which starts torchrun with the
node's rank and the main node's address from the variables Batch sets (AWS_BATCH_JOB_*). The
nodes reach each other on any TCP port inside their own security group (rendezvous, NCCL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.batch_container import JobIdentity
from infra.config import DistributedTrainingConfig
from infra.context import StackContext, child

LAUNCH_COMMAND = ["python", "-m", "pipelines.training.launch", "Ref::spec_uri"]


@dataclass
class DistributedTraining:
    queue: aws.batch.JobQueue
    job_definition: aws.batch.JobDefinition


def node_container(cfg: DistributedTrainingConfig, env: str) -> dict[str, Any]:
    """What every node's container runs with (the fields of batch_container.training_container)."""
    return {
        "command": LAUNCH_COMMAND,
        "resources": {
            "VCPU": cfg.vcpus_per_node(),
            "MEMORY": cfg.memory_mib_per_node,
            "GPU": cfg.gpus_per_node,
        },
        "environment": {"MLOPS_ENVIRONMENT": env, "MLOPS_PROCESSES_PER_NODE": str(cfg.gpus_per_node)},
        "stream_prefix": "distributed",
    }


def node_properties(cfg: DistributedTrainingConfig, container: dict[str, Any]) -> dict[str, Any]:
    """The job definition's nodeProperties: one node group covering every node."""
    return {
        "numNodes": cfg.nodes,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
    }


def create_distributed_training(
    ctx: StackContext,
    parent: pulumi.ComponentResource,
    cfg: DistributedTrainingConfig,
    vpc_id: pulumi.Input[str],
    subnet_id: pulumi.Input[str],
    service_role_arn: pulumi.Input[str],
    instance_profile_arn: pulumi.Input[str],
    identity: JobIdentity,
    retry_strategy: aws.batch.JobDefinitionRetryStrategyArgs,
    timeout_seconds: int,
) -> DistributedTraining:
    """The placement group, security group, on-demand compute environment, queue and job definition."""
    placement = aws.ec2.PlacementGroup(
        ctx.name("training-placement"),
        name=ctx.name("training-placement"),
        strategy="cluster",
        tags=ctx.tags(),
        opts=child(parent),
    )
    nodes_group = aws.ec2.SecurityGroup(
        ctx.name("distributed-sg"),
        description="Distributed training nodes: each other on any TCP port, HTTPS out",
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=0, to_port=65535, self=True, description="Ranks of the same job"
            )
        ],
        egress=[
            aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=0, to_port=65535, self=True, description="Ranks of the same job"
            ),
            aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS out"
            ),
        ],
        tags=ctx.tags(),
        opts=child(parent),
    )
    environment = aws.batch.ComputeEnvironment(
        ctx.name("gpu-distributed"),
        name=ctx.name("gpu-distributed"),
        type="MANAGED",
        service_role=service_role_arn,
        compute_resources=aws.batch.ComputeEnvironmentComputeResourcesArgs(
            type="EC2",  # multi-node parallel jobs do not run on Spot
            allocation_strategy="BEST_FIT_PROGRESSIVE",
            instance_types=list(cfg.instance_types),
            min_vcpus=0,
            desired_vcpus=0,
            max_vcpus=cfg.max_vcpus,
            instance_role=instance_profile_arn,
            subnets=[subnet_id],  # one Availability Zone, as a cluster placement group requires
            security_group_ids=[nodes_group.id],
            placement_group=placement.name,
            ec2_configurations=[
                aws.batch.ComputeEnvironmentComputeResourcesEc2ConfigurationArgs(
                    image_type="ECS_AL2023_NVIDIA"
                )
            ],
            tags=ctx.tags(),
        ),
        tags=ctx.tags(accelerator="gpu"),
        opts=child(parent),
    )
    queue = aws.batch.JobQueue(
        ctx.name("distributed-queue"),
        name=ctx.name("distributed-queue"),
        state="ENABLED",
        priority=100,
        compute_environment_orders=[
            aws.batch.JobQueueComputeEnvironmentOrderArgs(order=1, compute_environment=environment.arn)
        ],
        tags=ctx.tags(),
        opts=child(parent),
    )
    job_definition = aws.batch.JobDefinition(
        ctx.name("training-distributed"),
        name=ctx.name("training-distributed"),
        type="multinode",
        platform_capabilities=["EC2"],
        parameters={"spec_uri": "unset"},
        node_properties=identity.render(
            lambda container: node_properties(cfg, container), **node_container(cfg, ctx.env)
        ),
        retry_strategy=retry_strategy,
        timeout=aws.batch.JobDefinitionTimeoutArgs(attempt_duration_seconds=timeout_seconds),
        tags=ctx.tags(),
        opts=child(parent),
    )
    return DistributedTraining(queue, job_definition)
