"""An AWS emulator (moto's server on 127.0.0.1) for the aws adapters; reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port for the whole session; stopped at the end."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points every adapter at the emulator (no real AWS endpoint is ever reached) and resets it."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("MLOPS_AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield moto_endpoint


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name="eu-west-1", endpoint_url=endpoint)


@pytest.fixture
def kms_key(aws: str) -> str:
    return str(aws_client(aws, "kms").create_key(Description="test")["KeyMetadata"]["Arn"])


def make_bucket(endpoint: str, name: str) -> str:
    aws_client(endpoint, "s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return name
