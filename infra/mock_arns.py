"""The attributes AWS gives a resource once it exists, shaped as AWS shapes them, for the offline plan.

Pulumi's mocks answer a registration with its own inputs; an ARN built as `arn:aws:<service>:...:<name>`
would let a policy grant a resource in a shape IAM never evaluates and still look right. These formats
follow the IAM service reference's resource types (the IAM lint in `infra/fidelity/iam.py` checks every
granted ARN against them, so a wrong format here fails the suite).
"""

from __future__ import annotations

from typing import Any

# type token → (ARN after `arn:aws:`, with {region}, {account}, {name}, {id}; extra attributes)
_FORMATS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "s3:::{name}",
    "aws:kms/key:Key": "kms:{region}:{account}:key/{name}",
    "aws:iam/role:Role": "iam::{account}:role/{name}",
    "aws:iam/instanceProfile:InstanceProfile": "iam::{account}:instance-profile/{name}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "iam::{account}:oidc-provider/{url}",
    "aws:batch/jobQueue:JobQueue": "batch:{region}:{account}:job-queue/{name}",
    "aws:batch/computeEnvironment:ComputeEnvironment": "batch:{region}:{account}:compute-environment/{name}",
    "aws:batch/jobDefinition:JobDefinition": "batch:{region}:{account}:job-definition/{name}:1",
    "aws:ecr/repository:Repository": "ecr:{region}:{account}:repository/{name}",
    "aws:cloudwatch/logGroup:LogGroup": "logs:{region}:{account}:log-group:{name}",
    "aws:sns/topic:Topic": "sns:{region}:{account}:{name}",
    "aws:eks/cluster:Cluster": "eks:{region}:{account}:cluster/{name}",
    "aws:sagemaker/featureGroup:FeatureGroup": "sagemaker:{region}:{account}:feature-group/{name}",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "sagemaker:{region}:{account}:model-package-group/{name}",
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": "sagemaker:{region}:{account}:mlflow-tracking-server/{name}",
    "aws:glue/catalogDatabase:CatalogDatabase": "glue:{region}:{account}:database/{name}",
    "aws:ssm/parameter:Parameter": "ssm:{region}:{account}:parameter/{parameter}",
    "aws:secretsmanager/secret:Secret": "secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "cloudwatch:{region}:{account}:alarm:{name}",
    "aws:cloudwatch/eventRule:EventRule": "events:{region}:{account}:rule/{name}",
    "aws:rds/instance:Instance": "rds:{region}:{account}:db:{name}",
}

_NAME_INPUTS = (
    "name",
    "bucket",
    "identifier",
    "featureGroupName",
    "modelPackageGroupName",
    "trackingServerName",
)


def physical_name(logical: str, inputs: dict[str, Any]) -> str:
    """The name AWS knows the resource by: its name input when set, else the logical name."""
    return next((str(inputs[k]) for k in _NAME_INPUTS if inputs.get(k)), logical)


def mock_attributes(
    type_token: str, logical: str, inputs: dict[str, Any], region: str, account: str
) -> dict[str, Any]:
    """`arn` (and `arnPrefix` for job definitions) as AWS would return them; `{}` for unlisted types."""
    name = physical_name(logical, inputs)
    fmt = _FORMATS.get(type_token)
    if fmt is None:
        service = type_token.split(":")[1].split("/")[0] if ":" in type_token else "mock"
        return {"arn": f"arn:aws:{service}:{region}:{account}:{name}"}
    url = str(inputs.get("url", "")).removeprefix("https://")
    arn = "arn:aws:" + fmt.format(
        region=region, account=account, name=name, url=url, parameter=name.lstrip("/")
    )
    attributes: dict[str, Any] = {"arn": arn}
    if type_token == "aws:batch/jobDefinition:JobDefinition":
        attributes["arnPrefix"] = arn.rsplit(":", 1)[0]
        attributes["revision"] = 1
    return attributes
