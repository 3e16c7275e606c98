"""Planned values against botocore's service models: the shapes AWS's own APIs validate requests with.

Each resource type the program creates maps to the API call that creates (or configures) it. Every
planned input that reaches a member of that call's input shape is checked against the member's type,
enum, length and range limits and pattern, and against the member's documentation where AWS writes
what it blocks or retires (for example Batch's note that it blocks new environments on its Amazon
Linux 2 AMIs from 2026-06-30). Inputs that exist only in Pulumi (tags, force_destroy) are counted as not
covered rather than guessed at.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from infra.fidelity.findings import CheckReport
from infra.offline import Plan

SOURCE = "botocore service models"


@dataclass(frozen=True)
class ApiMapping:
    service: str
    operation: str
    # Pulumi input path → member path in the operation's input ("Operation:Path" for another call of the
    # same service, None where the input is Pulumi's own). Unlisted names match members by name.
    aliases: dict[str, str | None] = field(default_factory=dict)


_PULUMI_ONLY = {"tags": None, "tagsAll": None}
_BUCKET = {"bucket": "Bucket", "expectedBucketOwner": None}
MAPPINGS: dict[str, ApiMapping] = {
    "aws:s3/bucket:Bucket": ApiMapping("s3", "CreateBucket", {"bucket": "Bucket", "forceDestroy": None}),
    "aws:s3/bucketVersioning:BucketVersioning": ApiMapping("s3", "PutBucketVersioning", _BUCKET),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ApiMapping(
        "s3", "PutBucketEncryption", {**_BUCKET, "rules": "ServerSideEncryptionConfiguration.Rules"}
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ApiMapping(
        "s3",
        "PutPublicAccessBlock",
        {
            **_BUCKET,
            **{
                key: f"PublicAccessBlockConfiguration.{key[0].upper()}{key[1:]}"
                for key in (
                    "blockPublicAcls",
                    "blockPublicPolicy",
                    "ignorePublicAcls",
                    "restrictPublicBuckets",
                )
            },
        },
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ApiMapping(
        "s3", "PutBucketOwnershipControls", {**_BUCKET, "rule": "OwnershipControls.Rules"}
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ApiMapping(
        "s3", "PutBucketLifecycleConfiguration", {**_BUCKET, "rules": "LifecycleConfiguration.Rules"}
    ),
    "aws:s3/bucketLogging:BucketLogging": ApiMapping(
        "s3",
        "PutBucketLogging",
        {
            **_BUCKET,
            "targetBucket": "BucketLoggingStatus.LoggingEnabled.TargetBucket",
            "targetPrefix": "BucketLoggingStatus.LoggingEnabled.TargetPrefix",
        },
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ApiMapping("s3", "PutBucketPolicy", _BUCKET),
    "aws:ec2/vpc:Vpc": ApiMapping("ec2", "CreateVpc", {"enableDnsSupport": None, "enableDnsHostnames": None}),
    "aws:ec2/subnet:Subnet": ApiMapping("ec2", "CreateSubnet", {"mapPublicIpOnLaunch": None}),
    "aws:ec2/securityGroup:SecurityGroup": ApiMapping(
        "ec2",
        "CreateSecurityGroup",
        {"ingress": None, "egress": None},
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ApiMapping("ec2", "CreateVpcEndpoint"),
    "aws:ec2/eip:Eip": ApiMapping("ec2", "AllocateAddress"),
    "aws:ec2/placementGroup:PlacementGroup": ApiMapping("ec2", "CreatePlacementGroup", {"name": "GroupName"}),
    "aws:ec2/natGateway:NatGateway": ApiMapping("ec2", "CreateNatGateway"),
    "aws:ec2/internetGateway:InternetGateway": ApiMapping("ec2", "CreateInternetGateway", {"vpcId": None}),
    "aws:ec2/routeTable:RouteTable": ApiMapping("ec2", "CreateRouteTable", {"routes": None}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ApiMapping("ec2", "AssociateRouteTable"),
    "aws:ec2/flowLog:FlowLog": ApiMapping(
        "ec2", "CreateFlowLogs", {"vpcId": "ResourceIds", "iamRoleArn": "DeliverLogsPermissionArn"}
    ),
    "aws:kms/key:Key": ApiMapping(
        "kms",
        "CreateKey",
        {"enableKeyRotation": None, "deletionWindowInDays": "ScheduleKeyDeletion:PendingWindowInDays"},
    ),
    "aws:kms/alias:Alias": ApiMapping("kms", "CreateAlias", {"name": "AliasName"}),
    "aws:cloudwatch/logGroup:LogGroup": ApiMapping(
        "logs",
        "CreateLogGroup",
        {"name": "logGroupName", "retentionInDays": "PutRetentionPolicy:retentionInDays"},
    ),
    "aws:sns/topic:Topic": ApiMapping("sns", "CreateTopic", {"kmsMasterKeyId": None}),
    "aws:sns/topicSubscription:TopicSubscription": ApiMapping("sns", "Subscribe", {"topic": "TopicArn"}),
    "aws:sns/topicPolicy:TopicPolicy": ApiMapping(
        "sns", "SetTopicAttributes", {"arn": "TopicArn", "policy": "AttributeValue"}
    ),
    "aws:ecr/repository:Repository": ApiMapping(
        "ecr",
        "CreateRepository",
        {"name": "repositoryName", "encryptionConfigurations": "encryptionConfiguration"},
    ),
    "aws:eks/cluster:Cluster": ApiMapping(
        "eks",
        "CreateCluster",
        {"vpcConfig": "resourcesVpcConfig", "enabledClusterLogTypes": "logging.clusterLogging.types"},
    ),
    "aws:eks/nodeGroup:NodeGroup": ApiMapping(
        "eks",
        "CreateNodegroup",
        {"nodeRoleArn": "nodeRole", "subnetIds": "subnets", "nodeGroupName": "nodegroupName"},
    ),
    "aws:iam/role:Role": ApiMapping(
        "iam", "CreateRole", {"assumeRolePolicy": "AssumeRolePolicyDocument", "name": "RoleName"}
    ),
    "aws:iam/rolePolicy:RolePolicy": ApiMapping(
        "iam", "PutRolePolicy", {"policy": "PolicyDocument", "role": "RoleName", "name": "PolicyName"}
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ApiMapping(
        "iam", "AttachRolePolicy", {"role": "RoleName"}
    ),
    "aws:iam/instanceProfile:InstanceProfile": ApiMapping(
        "iam",
        "CreateInstanceProfile",
        {"name": "InstanceProfileName", "role": "AddRoleToInstanceProfile:RoleName"},
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ApiMapping(
        "iam",
        "CreateOpenIDConnectProvider",
        {"clientIdLists": "ClientIDList", "thumbprintLists": "ThumbprintList"},
    ),
    "aws:glue/catalogDatabase:CatalogDatabase": ApiMapping(
        "glue",
        "CreateDatabase",
        {
            "name": "DatabaseInput.Name",
            "description": "DatabaseInput.Description",
            "locationUri": "DatabaseInput.LocationUri",
        },
    ),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ApiMapping("sagemaker", "CreateModelPackageGroup"),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": ApiMapping(
        "sagemaker", "PutModelPackageGroupPolicy", {"resourcePolicy": "ResourcePolicy"}
    ),
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": ApiMapping(
        "sagemaker", "CreateMlflowTrackingServer"
    ),
    "aws:sagemaker/featureGroup:FeatureGroup": ApiMapping("sagemaker", "CreateFeatureGroup"),
    "aws:athena/workgroup:Workgroup": ApiMapping(
        "athena", "CreateWorkGroup", {"forceDestroy": None, "state": "UpdateWorkGroup:State"}
    ),
    "aws:batch/computeEnvironment:ComputeEnvironment": ApiMapping(
        "batch", "CreateComputeEnvironment", {"name": "computeEnvironmentName"}
    ),
    "aws:batch/jobQueue:JobQueue": ApiMapping("batch", "CreateJobQueue", {"name": "jobQueueName"}),
    "aws:batch/jobDefinition:JobDefinition": ApiMapping(
        "batch", "RegisterJobDefinition", {"name": "jobDefinitionName"}
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ApiMapping(
        "cloudwatch", "PutMetricAlarm", {"name": "AlarmName", "metricQueries": "Metrics", "dimensions": None}
    ),
    "aws:cloudwatch/eventRule:EventRule": ApiMapping("events", "PutRule"),
    "aws:cloudwatch/eventTarget:EventTarget": ApiMapping(
        "events", "PutTargets", {"rule": "Rule", "arn": "Targets.Arn"}
    ),
    "aws:cloudwatch/dashboard:Dashboard": ApiMapping("cloudwatch", "PutDashboard"),
    "aws:rds/instance:Instance": ApiMapping(
        "rds",
        "CreateDBInstance",
        {
            "identifier": "DBInstanceIdentifier",
            "instanceClass": "DBInstanceClass",
            "username": "MasterUsername",
            "password": "MasterUserPassword",
            "skipFinalSnapshot": "DeleteDBInstance:SkipFinalSnapshot",
            "finalSnapshotIdentifier": "DeleteDBInstance:FinalDBSnapshotIdentifier",
        },
    ),
    "aws:rds/subnetGroup:SubnetGroup": ApiMapping(
        "rds", "CreateDBSubnetGroup", {"description": "DBSubnetGroupDescription", "name": "DBSubnetGroupName"}
    ),
    "aws:ssm/parameter:Parameter": ApiMapping("ssm", "PutParameter"),
    "aws:secretsmanager/secret:Secret": ApiMapping("secretsmanager", "CreateSecret"),
}

# Words AWS uses in a member's documentation when it refuses or retires a value.
_RETIREMENT = re.compile(
    r"block creation|ending support|end of support|deprecated|no longer (?:supported|available)", re.I
)
_CODE_VALUE = re.compile(r"^[A-Z0-9_]+$")


@cache
def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _member(shape: Any, name: str) -> tuple[str, Any] | None:
    """The member of `shape` that Pulumi's input `name` stands for (same name, or singular/plural)."""
    members = getattr(shape, "members", {})
    wanted = {_norm(name), _norm(name).removesuffix("s"), _norm(name) + "s"}
    for member, member_shape in members.items():
        if _norm(member) in wanted:
            return member, member_shape
    return None


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).replace("\n", " ")


def _retirement_notes(documentation: str, value: str) -> list[str]:
    """Sentences of a member's documentation that retire or block `value` (by name or by what it is)."""
    labels = {value}
    definition = re.search(rf"<dt>\s*{re.escape(value)}\s*</dt>\s*<dd>(.*?)</dd>", documentation, re.S)
    if definition:
        link = re.search(r"<a [^>]*>(.*?)</a>", definition.group(1), re.S)
        if link:
            labels.add(re.sub(r"\s*\(.*?\)\s*", "", _text(link.group(1))).strip())
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", _text(documentation)))
    notes = []
    for sentence in sentences:
        if not _RETIREMENT.search(sentence):
            continue
        for label in labels:
            if label and re.search(rf"(?<![\w-]){re.escape(label)}(?![\w.]*\d)(?![A-Za-z0-9_])", sentence):
                notes.append(sentence.strip())
                break
    return notes


def _documented_values(documentation: str) -> set[str]:
    return {v.strip() for v in re.findall(r"<dt>\s*([A-Za-z0-9_]+)\s*</dt>", documentation)}


class _Walker:
    def __init__(self, report: CheckReport, resource: str) -> None:
        self.report = report
        self.resource = resource

    def leaves(self, value: Any) -> int:
        if isinstance(value, dict):
            return sum(self.leaves(v) for v in value.values())
        if isinstance(value, list):
            return sum(self.leaves(v) for v in value)
        return 1

    def walk(self, value: Any, shape: Any, path: str, documentation: str = "") -> None:
        if value is None or not isinstance(value, (str, int, float, bool, dict, list)):
            return  # unknown until apply (the engine's computed values), or nothing to check
        kind = shape.type_name
        if kind == "structure":
            if isinstance(value, str) and value.lstrip().startswith("{"):
                value = json.loads(value)  # JSON documents Pulumi passes as strings (container properties)
            if isinstance(value, list):
                for item in value:
                    self.walk(item, shape, path)
                return
            if not isinstance(value, dict):
                self.report.add(self.resource, path, f"expects an object ({shape.name}), got {value!r}")
                return
            for key, item in value.items():
                found = _member(shape, key)
                if found is None:
                    self.report.not_covered += self.leaves(item)
                    continue
                member_shape = found[1]
                self.walk(item, member_shape, f"{path}.{key}" if path else key, member_shape.documentation)
        elif kind == "list":
            items = value if isinstance(value, list) else [value]
            self._bounds(len(items), shape, path, "items")
            for index, item in enumerate(items):
                self.walk(item, shape.member, f"{path}[{index}]", documentation)
        elif kind == "map":
            if isinstance(value, dict):
                for key, item in value.items():
                    self.walk(item, shape.value, f"{path}.{key}", documentation)
        else:
            self.scalar(value, shape, path, documentation)

    def _bounds(self, size: float, shape: Any, path: str, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.report.add(self.resource, path, f"{size:g} {unit}, below the minimum {low} of {shape.name}")
        if high is not None and size > high:
            self.report.add(self.resource, path, f"{size:g} {unit}, above the maximum {high} of {shape.name}")

    def scalar(self, value: Any, shape: Any, path: str, documentation: str) -> None:
        self.report.checked += 1
        kind = shape.type_name
        if kind == "string":
            if not isinstance(value, str):
                self.report.add(self.resource, path, f"expects a string ({shape.name}), got {value!r}")
                return
            enum = shape.metadata.get("enum")
            if enum and value not in enum:
                self.report.add(
                    self.resource, path, f"{value!r} is not one of {shape.name}: {', '.join(enum)}"
                )
            self._bounds(len(value), shape, path, "characters")
            pattern = shape.metadata.get("pattern")
            if pattern:
                try:
                    matched = re.fullmatch(pattern, value, re.S) is not None
                except re.error:
                    matched = True  # a Java-only construct; the other constraints still apply
                if not matched:
                    self.report.add(
                        self.resource, path, f"{value!r} does not match {shape.name}'s pattern {pattern}"
                    )
            documented = _documented_values(documentation)
            codes = {v for v in documented if _CODE_VALUE.match(v)}
            if not enum and _CODE_VALUE.match(value) and len(codes) >= 3 and value not in documented:
                self.report.add(
                    self.resource, path, f"{value!r} is not among the documented values {sorted(documented)}"
                )
            for note in _retirement_notes(documentation, value):
                self.report.add(self.resource, path, f"{value!r}: AWS documents: {note}")
        elif kind in ("integer", "long", "double", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.report.add(self.resource, path, f"expects a number ({shape.name}), got {value!r}")
                return
            if kind in ("integer", "long") and not float(value).is_integer():
                self.report.add(self.resource, path, f"expects a whole number, got {value!r}")
            self._bounds(value, shape, path, "")
        elif kind == "boolean" and not isinstance(value, bool):
            self.report.add(self.resource, path, f"expects true or false, got {value!r}")


def _target(mapping: ApiMapping, alias: str) -> Any:
    """The shape an alias points at ("Member.Path" of the mapped call, or "Operation:Member.Path")."""
    operation, _, member_path = alias.rpartition(":")
    model = _model(mapping.service)
    shape = model.operation_model(operation or mapping.operation).input_shape
    for part in member_path.split("."):
        while shape.type_name == "list":
            shape = shape.member
        shape = shape.members[part]
    return shape


def check_api_models(plan: Plan) -> CheckReport:
    """Every planned input of a mapped resource type against the botocore shape of its API member."""
    report = CheckReport("api-models", SOURCE)
    for resource in plan.resources:
        mapping = MAPPINGS.get(resource.type)
        if mapping is None:
            if resource.type.startswith("aws:"):
                report.not_covered += 1
            continue
        report.resources += 1
        walker = _Walker(report, resource.name)
        root = _model(mapping.service).operation_model(mapping.operation).input_shape
        for key, value in resource.inputs.items():
            aliases = {**_PULUMI_ONLY, **mapping.aliases}
            if key in aliases:
                alias = aliases[key]
                if alias is None:
                    report.not_covered += walker.leaves(value)
                    continue
                shape = _target(mapping, alias)
                walker.walk(value, shape, key, shape.documentation)
                continue
            found = _member(root, key)
            if found is None:
                report.not_covered += walker.leaves(value)
                continue
            walker.walk(value, found[1], key, found[1].documentation)
    return report
