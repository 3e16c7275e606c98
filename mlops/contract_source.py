"""Where a flow finds its environment's contract: a JSON file locally, an SSM parameter in AWS."""

from __future__ import annotations

from mlops.bootstrap import read_local_contract
from mlops.contract import ContractError, PlatformContract, parse_contract
from mlops.settings import AwsPlatformSettings, EnvironmentSettings


def load_platform_contract(settings: EnvironmentSettings) -> PlatformContract:
    """The contract of `settings`' environment, validated; ContractError names what is wrong."""
    if isinstance(settings.platform, AwsPlatformSettings):
        return _from_ssm(settings.contract_parameter(), settings.platform.region)
    return read_local_contract(settings)


def _from_ssm(parameter: str, region: str) -> PlatformContract:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from pipelines.adapters.aws.session import client

    try:
        response = client("ssm", region).get_parameter(Name=parameter, WithDecryption=True)
    except NoCredentialsError as exc:
        raise ContractError(f"cannot read SSM parameter {parameter}: no AWS credentials found") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise ContractError(
                f"platform contract parameter {parameter} not found in {region}: has `pulumi up` run for this environment?"
            ) from exc
        raise ContractError(f"cannot read SSM parameter {parameter}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ContractError(f"cannot read SSM parameter {parameter}: {exc}") from exc
    return parse_contract(response["Parameter"]["Value"], f"SSM parameter {parameter}")
