"""Every rule of the pack reports a resource that violates it and stays quiet on one that complies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.model import Subject
from policies.rules import ALL_RULES, BY_NAME

TAGS = {"environment": "dev", "project": "p", "owner": "o", "cost-center": "c"}
KEY = "arn:aws:kms:eu-west-1:1:key/k"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "arn:aws:s3:::b/*", **extra: Any) -> dict[str, Any]:
    return {"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def gpu_env(**resources: Any) -> dict[str, Any]:
    compute = {"type": "SPOT", "minVcpus": 0, "maxVcpus": 16, "instanceTypes": ["g5.xlarge"], **resources}
    return {"computeResources": compute, "tags": {**TAGS, "accelerator": "gpu"}}


# (rule, resource type, violating props, complying props, rule parameters)
RESOURCE_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("kms-key-rotation", "aws:kms/key:Key", {"enableKeyRotation": False}, {"enableKeyRotation": True}, {}),
    (
        "kms-no-wildcard-principal",
        "aws:kms/key:Key",
        {
            "policy": doc(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}
            )
        },
        {
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::1:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            )
        },
        {},
    ),
    (
        "iam-no-wildcard-actions",
        "aws:iam/rolePolicy:RolePolicy",
        {"policy": doc(allow("s3:*"))},
        {"policy": doc(allow(["s3:GetObject"]))},
        {},
    ),
    (
        "iam-no-wildcard-actions",
        "aws:iam/policy:Policy",
        {"policy": doc(allow("*", "*"))},
        {"policy": doc(allow("sqs:SendMessage", "arn:aws:sqs:::q"))},
        {},
    ),
    (
        "iam-no-wildcard-resource-writes",
        "aws:iam/rolePolicy:RolePolicy",
        {"policy": doc(allow(["s3:PutObject"], "*"))},
        {
            "policy": doc(
                allow(["s3:GetObject", "ecr:GetAuthorizationToken"], "*"),
                allow("cloudwatch:PutMetricData", "*"),
                allow("s3:PutObject", "*", Condition={"StringEquals": {"aws:ResourceAccount": "1"}}),
            )
        },
        {},
    ),
    (
        "iam-no-admin-access",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        {"policyArn": "arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole"},
        {},
    ),
    (
        "iam-no-admin-access",
        "aws:iam/role:Role",
        {"managedPolicyArns": ["arn:aws:iam::aws:policy/PowerUserAccess"]},
        {"managedPolicyArns": []},
        {},
    ),
    (
        "eks-private-endpoint",
        "aws:eks/cluster:Cluster",
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}},
        {"vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True}},
        {},
    ),
    (
        "eks-private-endpoint",
        "aws:eks/cluster:Cluster",
        {"vpcConfig": {}},
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}},
        {},
    ),
    (
        "eks-secrets-encryption",
        "aws:eks/cluster:Cluster",
        {"encryptionConfig": {"resources": ["configmaps"], "provider": {"keyArn": KEY}}},
        {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY}}},
        {},
    ),
    (
        "eks-control-plane-logging",
        "aws:eks/cluster:Cluster",
        {"enabledClusterLogTypes": ["api", "audit"]},
        {"enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"]},
        {},
    ),
    (
        "ecr-scan-on-push",
        "aws:ecr/repository:Repository",
        {"imageScanningConfiguration": {"scanOnPush": False}},
        {"imageScanningConfiguration": {"scanOnPush": True}},
        {},
    ),
    (
        "ecr-immutable-tags",
        "aws:ecr/repository:Repository",
        {"imageTagMutability": "MUTABLE"},
        {"imageTagMutability": "IMMUTABLE"},
        {},
    ),
    (
        "ecr-kms-encryption",
        "aws:ecr/repository:Repository",
        {"encryptionConfigurations": [{"encryptionType": "AES256"}]},
        {"encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}]},
        {},
    ),
    (
        "batch-no-privileged-containers",
        "aws:batch/jobDefinition:JobDefinition",
        {"containerProperties": json.dumps({"image": "x", "privileged": True})},
        {"containerProperties": json.dumps({"image": "x", "privileged": False})},
        {},
    ),
    (
        "batch-gpu-scale-to-zero",
        "aws:batch/computeEnvironment:ComputeEnvironment",
        gpu_env(minVcpus=4),
        gpu_env(),
        {},
    ),
    (
        "sagemaker-endpoint-kms",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        {},
        {"kmsKeyArn": KEY},
        {},
    ),
    (
        "sagemaker-model-isolation",
        "aws:sagemaker/model:Model",
        {"enableNetworkIsolation": False},
        {"enableNetworkIsolation": True},
        {},
    ),
    (
        "sagemaker-model-isolation",
        "aws:sagemaker/model:Model",
        {},
        {"vpcConfig": {"subnets": ["s1"], "securityGroupIds": ["g"]}},
        {},
    ),
    (
        "sagemaker-feature-group-kms",
        "aws:sagemaker/featureGroup:FeatureGroup",
        {
            "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b"}},
            "onlineStoreConfig": {"enableOnlineStore": True},
        },
        {
            "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b", "kmsKeyId": KEY}},
            "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY}},
        },
        {},
    ),
    (
        "sagemaker-no-direct-internet",
        "aws:sagemaker/notebookInstance:NotebookInstance",
        {},
        {"directInternetAccess": "Disabled"},
        {},
    ),
    (
        "sagemaker-no-direct-internet",
        "aws:sagemaker/domain:Domain",
        {"appNetworkAccessType": "PublicInternetOnly"},
        {"appNetworkAccessType": "VpcOnly"},
        {},
    ),
    (
        "logs-kms-encryption",
        "aws:cloudwatch/logGroup:LogGroup",
        {"retentionInDays": 30},
        {"kmsKeyId": KEY},
        {},
    ),
    ("logs-retention", "aws:cloudwatch/logGroup:LogGroup", {}, {"retentionInDays": 30}, {}),
    (
        "logs-retention",
        "aws:cloudwatch/logGroup:LogGroup",
        {"retentionInDays": 14},
        {"retentionInDays": 400},
        {"minimumDays": 365},
    ),
    (
        "rds-storage-encrypted",
        "aws:rds/instance:Instance",
        {"storageEncrypted": False},
        {"storageEncrypted": True},
        {},
    ),
    ("rds-storage-encrypted", "aws:rds/cluster:Cluster", {}, {"storageEncrypted": True}, {}),
    (
        "rds-not-public",
        "aws:rds/instance:Instance",
        {"publiclyAccessible": True},
        {"publiclyAccessible": False},
        {},
    ),
    (
        "rds-backups",
        "aws:rds/instance:Instance",
        {"backupRetentionPeriod": 1},
        {"backupRetentionPeriod": 14},
        {"minimumDays": 7},
    ),
    ("rds-multi-az", "aws:rds/instance:Instance", {"multiAz": False}, {"multiAz": True}, {}),
    ("sns-topic-kms", "aws:sns/topic:Topic", {}, {"kmsMasterKeyId": KEY}, {}),
    (
        "cost-gpu-instance-allow-list",
        "aws:batch/computeEnvironment:ComputeEnvironment",
        gpu_env(instanceTypes=["p5.48xlarge"]),
        gpu_env(instanceTypes=["g5.xlarge"]),
        {"allowedInstanceTypes": ["g5.xlarge"]},
    ),
    (
        "cost-max-vcpus",
        "aws:batch/computeEnvironment:ComputeEnvironment",
        gpu_env(maxVcpus=1024),
        gpu_env(maxVcpus=64),
        {"maxVcpus": 128},
    ),
]


def _bucket(name: str, **tags: str) -> Subject:
    return Subject("aws:s3/bucket:Bucket", name, {"bucket": name, "tags": {**TAGS, **tags}})


def _on(type_token: str, bucket: str, props: dict[str, Any], prop: str = "bucket") -> Subject:
    return Subject(type_token, f"{bucket}-{type_token.rsplit(':', 1)[-1]}", props, {prop: (bucket,)})


def _complete_bucket(name: str = "data") -> list[Subject]:
    """A bucket with every companion resource the S3 rules ask for."""
    return [
        _bucket(name),
        _bucket("logs", purpose="access-logs"),
        _on(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            name,
            {
                "rules": [
                    {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY}}
                ]
            },
        ),
        _on(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "logs",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        ),
        *[
            _on(
                "aws:s3/bucketVersioning:BucketVersioning",
                b,
                {"versioningConfiguration": {"status": "Enabled"}},
            )
            for b in (name, "logs")
        ],
        *[
            _on(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                b,
                dict.fromkeys(
                    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
                    True,
                ),
            )
            for b in (name, "logs")
        ],
        *[
            _on(
                "aws:s3/bucketPolicy:BucketPolicy",
                b,
                {
                    "policy": doc(
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    )
                },
            )
            for b in (name, "logs")
        ],
        _on("aws:s3/bucketLogging:BucketLogging", name, {"targetBucket": "logs"}),
        *[
            _on(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                b,
                {
                    "rules": [
                        {
                            "id": "a",
                            "status": "Enabled",
                            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                        }
                    ]
                },
            )
            for b in (name, "logs")
        ],
        Subject("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16", "tags": TAGS}),
        Subject("aws:ec2/flowLog:FlowLog", "flow", {"trafficType": "ALL", "tags": TAGS}, {"vpcId": ("vpc",)}),
    ]


def _without(subjects: list[Subject], type_fragment: str, bucket: str = "data") -> list[Subject]:
    return [s for s in subjects if not (type_fragment in s.type and s.refs.get("bucket") == (bucket,))]


# (rule, how to break the complete stack, the resource the rule must name)
STACK_CASES: list[tuple[str, Any, str]] = [
    ("s3-bucket-kms-encryption", lambda s: _without(s, "ServerSideEncryption"), "data"),
    ("s3-bucket-versioning", lambda s: _without(s, "bucketVersioning"), "data"),
    ("s3-public-access-block", lambda s: _without(s, "PublicAccessBlock"), "data"),
    ("s3-tls-only", lambda s: _without(s, "bucketPolicy"), "data"),
    ("s3-access-logging", lambda s: _without(s, "bucketLogging"), "data"),
    ("s3-abort-incomplete-multipart", lambda s: _without(s, "Lifecycle"), "data"),
    ("vpc-flow-logs", lambda s: [x for x in s if x.type != "aws:ec2/flowLog:FlowLog"], "vpc"),
    (
        "required-tags",
        lambda s: [*s, Subject("aws:sns/topic:Topic", "untagged", {"tags": {"environment": "dev"}})],
        "untagged",
    ),
    (  # a value botocore's Batch model refuses (CEState is ENABLED or DISABLED)
        "aws-fidelity",
        lambda s: [
            *s,
            Subject(
                "aws:batch/computeEnvironment:ComputeEnvironment", "gpu", {"type": "MANAGED", "state": "ON"}
            ),
        ],
        "gpu",
    ),
]


@pytest.mark.parametrize(
    ("rule", "type_token", "bad", "good", "params"),
    RESOURCE_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(RESOURCE_CASES)],
)
def test_resource_rule(
    rule: str, type_token: str, bad: dict[str, Any], good: dict[str, Any], params: dict[str, Any]
) -> None:
    policy = BY_NAME[rule]
    violating = policy.findings([Subject(type_token, "bad", bad)], params)
    assert violating and all(name == "bad" for name, _ in violating), violating
    assert policy.findings([Subject(type_token, "good", good)], params) == []
    assert (
        policy.findings([Subject("aws:other/thing:Thing", "other", bad)], params) == []
    )  # other types are ignored


@pytest.mark.parametrize(("rule", "breakage", "culprit"), STACK_CASES, ids=[c[0] for c in STACK_CASES])
def test_stack_rule(rule: str, breakage: Any, culprit: str) -> None:
    policy = BY_NAME[rule]
    complete = _complete_bucket()
    assert policy.findings(complete, {}) == []
    found = policy.findings(breakage(complete), {})
    assert [name for name, _ in found] == [culprit], found


def test_access_log_bucket_may_use_sse_s3_but_data_buckets_may_not() -> None:
    stack = _complete_bucket()
    sse_s3 = [
        Subject(
            s.type,
            s.name,
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
            s.refs,
        )
        if "ServerSideEncryption" in s.type
        else s
        for s in stack
    ]
    found = BY_NAME["s3-bucket-kms-encryption"].findings(sse_s3, {})
    assert [name for name, _ in found] == ["data"]


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    covered = {case[0] for case in RESOURCE_CASES} | {case[0] for case in STACK_CASES}
    assert covered == set(BY_NAME)
    assert len(ALL_RULES) >= 30


def test_every_rule_names_the_check_it_mirrors() -> None:
    for rule in ALL_RULES:
        assert rule.mirrors and rule.description.endswith("."), rule.name
