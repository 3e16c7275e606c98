"""SageMaker: encrypted endpoints and feature groups, isolated models, no direct internet access."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.model import Rule, Subject

ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
DOMAIN = "aws:sagemaker/domain:Domain"


def endpoint_kms(config: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if not config.get("kmsKeyArn"):
        yield "endpoint configuration has no KMS key for its storage volume"


def model_isolation(model: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if model.get("enableNetworkIsolation") is not True and not model.get("vpcConfig", "subnets"):
        yield "model neither runs with network isolation nor inside a VPC"


def feature_group_encryption(group: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if group.get("offlineStoreConfig") and not group.get("offlineStoreConfig", "s3StorageConfig", "kmsKeyId"):
        yield "offline store is not encrypted with a KMS key"
    if group.get("onlineStoreConfig", "enableOnlineStore") and not group.get(
        "onlineStoreConfig", "securityConfig", "kmsKeyId"
    ):
        yield "online store is not encrypted with a KMS key"


def no_direct_internet(subject: Subject, _: Mapping[str, Any]) -> Iterable[str]:
    if subject.type == NOTEBOOK and subject.get("directInternetAccess", default="Enabled") != "Disabled":
        yield "notebook instance has direct internet access"
    if (
        subject.type == DOMAIN
        and subject.get("appNetworkAccessType", default="PublicInternetOnly") != "VpcOnly"
    ):
        yield "Studio domain apps reach the internet directly (appNetworkAccessType must be VpcOnly)"


RULES = (
    Rule(
        "sagemaker-endpoint-kms",
        "Endpoint configurations encrypt their storage with a KMS key.",
        "CKV_AWS_98",
        types=(ENDPOINT_CONFIG,),
        check=endpoint_kms,
    ),
    Rule(
        "sagemaker-model-isolation",
        "Models run with network isolation or inside a VPC.",
        "CKV_AWS_370, CKV_AWS_369",
        types=(MODEL,),
        check=model_isolation,
    ),
    Rule(
        "sagemaker-feature-group-kms",
        "Feature group offline and online stores are KMS-encrypted.",
        "WA ML Lens, security (encrypt data at rest)",
        types=(FEATURE_GROUP,),
        check=feature_group_encryption,
    ),
    Rule(
        "sagemaker-no-direct-internet",
        "Notebooks and Studio domains have no direct internet access.",
        "CKV_AWS_122, WA ML Lens, security (network isolation)",
        types=(NOTEBOOK, DOMAIN),
        check=no_direct_internet,
    ),
)
