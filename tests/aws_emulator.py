"""Helpers for tests against moto's server (an AWS emulator on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import boto3


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name="eu-west-1", endpoint_url=endpoint)


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
