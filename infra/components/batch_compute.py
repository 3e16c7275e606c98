"""GPU batch compute: AWS Batch GPU environments (spot first, on-demand fallback, scale to zero),
a CPU environment, prioritised queues, the training job definition, ECR repositories and
least-privilege roles."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components.distributed_training import (
    DistributedTraining,
    JobIdentity,
    create_distributed_training,
)
from infra.context import StackContext, child, managed_role, service_role

# Spot reclaims surface as a host termination; application errors are not retried.
SPOT_RECLAIM_REASON = "Host EC2*"


def retry_on_spot_reclaim(attempts: int) -> aws.batch.JobDefinitionRetryStrategyArgs:
    return aws.batch.JobDefinitionRetryStrategyArgs(
        attempts=attempts,
        evaluate_on_exits=[
            aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(
                on_status_reason=SPOT_RECLAIM_REASON, action="RETRY"
            ),
            aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(on_reason="*", action="EXIT"),
        ],
    )


class BatchCompute(pulumi.ComponentResource):
    gpu_queue: aws.batch.JobQueue
    cpu_queue: aws.batch.JobQueue
    training_job_definition: aws.batch.JobDefinition
    fanout_job_definition: aws.batch.JobDefinition
    repositories: dict[str, aws.ecr.Repository]
    job_role: aws.iam.Role

    def __init__(
        self,
        ctx: StackContext,
        key_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: list[pulumi.Output[str]],
        data_bucket_arns: list[pulumi.Output[str]],
        log_group_name: pulumi.Input[str],
        log_group_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:BatchCompute", ctx.name("compute"), None, opts)
        cfg = ctx.config.compute

        self.repositories = {
            purpose: aws.ecr.Repository(
                ctx.name(f"{purpose}-repo"),
                name=ctx.name(purpose),
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=key_arn)
                ],
                tags=ctx.tags(),
                opts=child(self),
            )
            for purpose in ("training", "serving")
        }

        batch_service_role = managed_role(
            ctx,
            self,
            "batch-service",
            "batch.amazonaws.com",
            "arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole",
        )
        instance_role = managed_role(
            ctx,
            self,
            "batch-instance",
            "ec2.amazonaws.com",
            "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
        )
        profile = aws.iam.InstanceProfile(
            ctx.name("batch-instance-profile"), role=instance_role.name, tags=ctx.tags(), opts=child(self)
        )

        objects = [pulumi.Output.concat(arn, "/*") for arn in data_bucket_arns]
        statements: list[dict[str, object]] = [
            {
                "Sid": "LakeObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": objects,
            },
            {
                "Sid": "LakeBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": data_bucket_arns,
            },
            {
                "Sid": "DataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": key_arn,
            },
            # Batch inference reads the lake's tables and commits predictions.<model> to it.
            ctx.lake_catalog_grant("LakeCatalog"),
            {
                "Sid": "Metrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": f"mlops/{ctx.env}"}},
            },
        ]
        if cfg.extra_job_actions:
            statements.append(
                {
                    "Sid": "Extra",
                    "Effect": "Allow",
                    "Action": list(cfg.extra_job_actions),
                    "Resource": objects,
                }
            )
        self.job_role = service_role(ctx, self, "training-job", "ecs-tasks.amazonaws.com", *statements)

        execution_role = service_role(
            ctx,
            self,
            "training-exec",
            "ecs-tasks.amazonaws.com",
            {
                "Sid": "PullTrainingImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": self.repositories["training"].arn,
            },
            # GetAuthorizationToken has no resource-level permissions: AWS requires "*" here.
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": pulumi.Output.concat(log_group_arn, ":*"),
            },
            {"Sid": "DecryptImage", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": key_arn},
        )

        security_group = aws.ec2.SecurityGroup(
            ctx.name("batch-sg"),
            description="Batch compute: no inbound, HTTPS out",
            vpc_id=vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="HTTPS out",
                )
            ],
            tags=ctx.tags(),
            opts=child(self),
        )

        def environment(
            purpose: str, kind: str, instance_types: tuple[str, ...], max_vcpus: int, min_vcpus: int
        ) -> aws.batch.ComputeEnvironment:
            spot = kind == "SPOT"
            return aws.batch.ComputeEnvironment(
                ctx.name(purpose),
                name=ctx.name(purpose),
                type="MANAGED",
                service_role=batch_service_role.arn,
                compute_resources=aws.batch.ComputeEnvironmentComputeResourcesArgs(
                    type=kind,
                    allocation_strategy="SPOT_PRICE_CAPACITY_OPTIMIZED" if spot else "BEST_FIT_PROGRESSIVE",
                    bid_percentage=cfg.spot_bid_percentage if spot else None,
                    instance_types=list(instance_types),
                    min_vcpus=min_vcpus,
                    desired_vcpus=min_vcpus,
                    max_vcpus=max_vcpus,
                    instance_role=profile.arn,
                    subnets=subnet_ids,
                    security_group_ids=[security_group.id],
                    ec2_configurations=[
                        aws.batch.ComputeEnvironmentComputeResourcesEc2ConfigurationArgs(
                            # Batch blocks new environments on its Amazon Linux 2 AMIs from 2026-06-30.
                            image_type="ECS_AL2023_NVIDIA" if purpose.startswith("gpu") else "ECS_AL2023"
                        )
                    ],
                    tags=ctx.tags(),
                ),
                tags=ctx.tags(accelerator="gpu" if purpose.startswith("gpu") else "cpu"),
                opts=child(self),
            )

        gpu_spot = environment(
            "gpu-spot", "SPOT", cfg.gpu_instance_types, cfg.gpu_max_vcpus, cfg.gpu_min_vcpus
        )
        gpu_on_demand = environment(
            "gpu-on-demand", "EC2", cfg.gpu_instance_types, cfg.gpu_max_vcpus, cfg.gpu_min_vcpus
        )
        cpu = environment("cpu", "SPOT", cfg.cpu_instance_types, cfg.cpu_max_vcpus, 0)

        self.gpu_queue = aws.batch.JobQueue(
            ctx.name("gpu-queue"),
            name=ctx.name("gpu-queue"),
            state="ENABLED",
            priority=100,
            compute_environment_orders=[
                aws.batch.JobQueueComputeEnvironmentOrderArgs(order=1, compute_environment=gpu_spot.arn),
                aws.batch.JobQueueComputeEnvironmentOrderArgs(order=2, compute_environment=gpu_on_demand.arn),
            ],
            tags=ctx.tags(),
            opts=child(self),
        )
        self.cpu_queue = aws.batch.JobQueue(
            ctx.name("cpu-queue"),
            name=ctx.name("cpu-queue"),
            state="ENABLED",
            priority=50,
            compute_environment_orders=[
                aws.batch.JobQueueComputeEnvironmentOrderArgs(order=1, compute_environment=cpu.arn)
            ],
            tags=ctx.tags(),
            opts=child(self),
        )

        identity = JobIdentity(
            pulumi.Output.concat(self.repositories["training"].repository_url, ":", cfg.image_tag),
            self.job_role.arn,
            execution_role.arn,
            log_group_name,
        )
        resources = {"VCPU": cfg.training_vcpus, "MEMORY": cfg.training_memory_mib}
        if cfg.training_gpus:
            resources["GPU"] = cfg.training_gpus

        def job_definition(
            purpose: str, command: list[str], parameters: dict[str, str], resources: dict[str, int]
        ) -> aws.batch.JobDefinition:
            return aws.batch.JobDefinition(
                ctx.name(purpose),
                name=ctx.name(purpose),
                type="container",
                platform_capabilities=["EC2"],
                parameters=parameters,
                container_properties=identity.render(
                    lambda container: container,
                    command=command,
                    resources=resources,
                    environment={"MLOPS_ENVIRONMENT": ctx.env},
                    stream_prefix=purpose,
                ),
                retry_strategy=retry_on_spot_reclaim(cfg.job_attempts),
                timeout=aws.batch.JobDefinitionTimeoutArgs(attempt_duration_seconds=cfg.job_timeout_seconds),
                tags=ctx.tags(),
                opts=child(self),
            )

        self.training_job_definition = job_definition(
            "training",
            ["python", "-m", "pipelines.training.job", "Ref::spec_uri"],
            {"spec_uri": "unset"},
            resources,
        )
        # Fan-outs (batch inference) score on CPUs: the CPU queue, with no GPU to wait for.
        self.fanout_job_definition = job_definition(
            "fanout",
            ["python", "-m", "pipelines.fanout", "Ref::spec_uri", "Ref::offset"],
            {"spec_uri": "unset", "offset": "0"},
            {"VCPU": cfg.fanout_vcpus, "MEMORY": cfg.fanout_memory_mib},
        )
        self.distributed: DistributedTraining | None = None
        if cfg.distributed is not None:
            self.distributed = create_distributed_training(
                ctx,
                self,
                cfg.distributed,
                vpc_id,
                subnet_ids[0],
                batch_service_role.arn,
                profile.arn,
                identity,
                retry_on_spot_reclaim(cfg.job_attempts),
                cfg.job_timeout_seconds,
            )
        self.register_outputs({"gpu_queue": self.gpu_queue.name, "cpu_queue": self.cpu_queue.name})
