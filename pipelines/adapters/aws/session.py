"""boto3 clients for the AWS adapters: one place for region, endpoint overrides and retries."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

# Adaptive retries back off on throttling (the feature store and CloudWatch throttle under load).
RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"})


def client(service: str, region: str | None = None) -> Any:
    """A client for `service`; $MLOPS_AWS_ENDPOINT_URL points every service at an emulator (moto)."""
    endpoint = os.environ.get("MLOPS_AWS_ENDPOINT_URL") or None
    return boto3.client(
        service,
        region_name=region or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=endpoint,
        config=RETRIES,
    )
