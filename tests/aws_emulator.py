"""Helpers for tests against moto's server (an AWS emulator on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import boto3


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name="eu-west-1", endpoint_url=endpoint)


def credentials_for_account(endpoint: str, account_id: str) -> dict[str, str]:
    """Environment variables holding credentials that moto attributes to `account_id` (via AssumeRole)."""
    issued = aws_client(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/release", RoleSessionName="tests"
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
        "AWS_SESSION_TOKEN": issued["SessionToken"],
    }


def make_bucket(endpoint: str, name: str, kms_key: str | None = None) -> str:
    """A bucket; with `kms_key`, default encryption with that key (as `infra/` provisions it)."""
    s3 = aws_client(endpoint, "s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    if kms_key:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": kms_key,
                        }
                    }
                ]
            },
        )
    return name


def make_batch_queue(endpoint: str, queue: str, job_definition: str) -> tuple[str, str]:
    """An (unmanaged) compute environment, a job queue and the training job definition; Docker off."""
    import requests

    requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10)
    role = aws_client(endpoint, "iam").create_role(RoleName=f"{queue}-batch", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    batch = aws_client(endpoint, "batch")
    env = batch.create_compute_environment(
        computeEnvironmentName=f"{queue}-env", type="UNMANAGED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=100,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=job_definition,
        type="container",
        containerProperties={
            "image": "training:1",
            "vcpus": 1,
            "memory": 512,
            "command": ["python", "-m", "pipelines.training.job", "Ref::spec_uri"],
        },
    )
    return queue, job_definition


def make_lake(
    endpoint: str, kms_key: str, database: str = "mlops_dev_lake", raw: str = "raw", curated: str = "curated"
) -> Any:
    """Raw and curated buckets (default SSE-KMS), the Glue database, and the contract section naming them."""
    from mlops.contract import AwsLake

    for bucket in (raw, curated):
        make_bucket(endpoint, bucket, kms_key)
    aws_client(endpoint, "glue").create_database(DatabaseInput={"Name": database})
    return AwsLake(
        raw_bucket=raw,
        curated_bucket=curated,
        quarantine_bucket="quarantine",
        glue_database=database,
        kms_key_id=kms_key,
    )
