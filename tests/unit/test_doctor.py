"""`mlops doctor` against emulated AWS: moto for STS, S3, KMS and EC2; botocore's Stubber for Service
Quotas and EKS's version calendar, which moto does not implement."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from mlops.cli import app
from mlops.doctor import QUOTAS, Doctor, Verdict
from mlops.paths import PACKAGE_ROOT
from tests.aws_emulator import aws_client

PROVIDER = "awskms://alias/mlops-pulumi-secrets?region=eu-west-1"


@pytest.fixture
def environments(tmp_path: Path) -> Path:
    """A copy of environments/ whose dev stack records a KMS secrets provider (the one-time setup)."""
    target = tmp_path / "environments"
    shutil.copytree(PACKAGE_ROOT / "environments", target)
    stack = target / "Pulumi.dev.yaml"
    stack.write_text(f"secretsprovider: {PROVIDER}\nencryptedkey: c2VjcmV0\n" + stack.read_text())
    return target


def _edit_stack(environments: Path, change: Callable[[dict[str, Any]], None]) -> None:
    stack = environments / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack.read_text())
    change(document["config"]["mlops-blueprint:platform"])
    stack.write_text(yaml.safe_dump(document))


def _stubbed(service: str, responses: list[tuple[str, dict[str, Any]]]) -> Any:
    client = boto3.client(service, region_name="eu-west-1")
    stubber = Stubber(client)
    for method, response in responses:
        stubber.add_response(method, response)
    stubber.activate()
    return client


def _quota(value: float) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("get_service_quota", {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}})
        for code in ("L-DB2E81BA", "L-3819A6DF", "L-1216C47A", "L-34B43A08")
    ]


def _eks(status: str, end: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
    version: dict[str, Any] = {"clusterVersion": "1.35", "versionStatus": status}
    if end:
        version["endOfStandardSupportDate"] = end
    return [("describe_cluster_versions", {"clusterVersions": [version]})]


def _doctor(
    aws: str,
    environments: Path,
    quota: float = 1024,
    eks: list[tuple[str, dict[str, Any]]] | None = None,
    environ: dict[str, str] | None = None,
    s3: Any = None,
) -> list[Verdict]:
    def clients(service: str, region: str) -> Any:
        if service == "service-quotas":
            return _stubbed(service, [r for r in _quota(quota) if quota is not None])
        if service == "eks":
            return _stubbed(service, eks or _eks("STANDARD_SUPPORT", datetime(2027, 3, 27, tzinfo=UTC)))
        if service == "s3" and s3 is not None:
            return s3
        return boto3.client(service, region_name=region, endpoint_url=aws)

    environ = {"PULUMI_BACKEND_URL": "s3://mlops-pulumi-state", "AWS_REGION": "eu-west-1"} | (environ or {})
    return Doctor("dev", environments, clients, environ).run()


@pytest.fixture
def account(aws: str) -> str:
    aws_client(aws, "s3").create_bucket(
        Bucket="mlops-pulumi-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    kms = aws_client(aws, "kms")
    key = kms.create_key(Description="pulumi secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/mlops-pulumi-secrets", TargetKeyId=key)
    return aws


def _by_check(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.check: v for v in verdicts}


def test_a_ready_account_passes_every_check(account: str, environments: Path) -> None:
    verdicts = _by_check(_doctor(account, environments))
    assert [v.check for v in verdicts.values()] == [
        "identity",
        "backend",
        "secrets provider",
        "stack",
        "bucket names",
        "GPU instance types",
        "vCPU quotas",
        "GPU facts",
        "EKS version",
    ]
    assert {v.check: v.status for v in verdicts.values()} == dict.fromkeys(verdicts, "ok"), verdicts
    assert "account 123456789012" in verdicts["identity"].message
    assert "does not exist yet" in verdicts["stack"].message
    assert verdicts["bucket names"].message == "5 free, 0 already the stack's"


def test_an_existing_stack_and_its_buckets_are_fine(account: str, environments: Path) -> None:
    s3 = aws_client(account, "s3")
    s3.put_object(Bucket="mlops-pulumi-state", Key=".pulumi/stacks/mlops-blueprint/dev.json", Body=b"{}")
    s3.create_bucket(Bucket="mlops-dev-raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    verdicts = _by_check(_doctor(account, environments))
    assert verdicts["stack"].message == "dev exists in the backend"
    assert (
        verdicts["bucket names"].status == "ok"
        and "1 already the stack's" in verdicts["bucket names"].message
    )


def test_a_bucket_of_ours_outside_the_stack_or_of_another_account_fails(
    account: str, environments: Path
) -> None:
    aws_client(account, "s3").create_bucket(
        Bucket="mlops-dev-curated", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    verdict = _by_check(_doctor(account, environments))["bucket names"]
    assert verdict.status == "fail" and "not in the stack: mlops-dev-curated" in verdict.message

    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=account)
    stubber = Stubber(s3)
    stubber.add_response("head_object", {})  # the stack exists
    stubber.add_client_error("head_bucket", "403", http_status_code=403)
    for _ in range(4):
        stubber.add_client_error("head_bucket", "404", http_status_code=404)
    stubber.activate()
    doctor = Doctor("dev", environments, lambda service, region: s3, {"PULUMI_BACKEND_URL": "s3://state"})
    verdict = doctor.bucket_names()
    assert verdict.status == "fail"
    assert (
        verdict.message
        == "taken by another account: mlops-dev-raw; set platform.name_suffix in Pulumi.dev.yaml"
    )


def test_gpu_types_the_region_does_not_offer_fail_by_name(account: str, environments: Path) -> None:
    _edit_stack(environments, lambda p: p["compute"].update(gpu_instance_types=["g5.xlarge", "g9.mega"]))
    verdict = _by_check(_doctor(account, environments))["GPU instance types"]
    assert (verdict.status, verdict.message) == ("fail", "not offered in eu-west-1: g9.mega")


def test_quotas_below_the_configured_vcpus_fail_naming_the_quota(account: str, environments: Path) -> None:
    verdict = _by_check(_doctor(account, environments, quota=8))["vCPU quotas"]
    assert verdict.status == "fail"
    assert f"{QUOTAS[('gpu', 'spot')][1]} (L-3819A6DF) is 8 vCPUs, the config needs 16" in verdict.message
    assert "request increases in Service Quotas" in verdict.message


def test_an_eks_version_out_of_support_fails_and_extended_support_warns(
    account: str, environments: Path
) -> None:
    verdict = _by_check(_doctor(account, environments, eks=_eks("UNSUPPORTED")))["EKS version"]
    assert (verdict.status, verdict.message) == ("fail", "Kubernetes 1.35 is no longer supported by EKS")
    verdict = _by_check(_doctor(account, environments, eks=_eks("EXTENDED_SUPPORT")))["EKS version"]
    assert verdict.status == "warn"


def test_backend_and_secrets_provider_problems_are_named(account: str, environments: Path) -> None:
    verdicts = _by_check(_doctor(account, environments, environ={"PULUMI_BACKEND_URL": "s3://no-such-state"}))
    assert verdicts["backend"].status == "fail" and "404" in verdicts["backend"].message
    stack = environments / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace(PROVIDER, "awskms://alias/missing?region=eu-west-1"))
    assert _by_check(_doctor(account, environments))["secrets provider"].status == "fail"
    stack.write_text(
        "\n".join(line for line in stack.read_text().splitlines() if "secretsprovider" not in line)
    )
    verdict = _by_check(_doctor(account, environments))["secrets provider"]
    assert verdict.status == "fail" and "run `pulumi stack init dev --secrets-provider" in verdict.message


def test_without_credentials_doctor_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "MLOPS_AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # earlier tests' cached credentials
    monkeypatch.setenv(
        "MLOPS_AWS_ENDPOINT_URL", "http://127.0.0.1:9"
    )  # nothing leaves the machine regardless
    result = CliRunner().invoke(app, ["doctor", "--env", "dev"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "fail identity: no AWS credentials found"


def test_multi_node_gpu_facts_are_checked_against_ec2_and_count_against_the_on_demand_quota(
    account: str, environments: Path
) -> None:
    def distributed(platform: dict[str, Any]) -> None:
        platform["compute"]["distributed"] = {
            "nodes": 2,
            "gpus_per_node": 4,
            "instance_types": ["g5.12xlarge"],
            "max_vcpus": 96,
        }

    def needed() -> dict[tuple[str, str], int]:
        def clients(service: str, region: str) -> Any:
            return boto3.client(service, region_name=region, endpoint_url=account)

        return Doctor("dev", environments, clients, {})._needed_vcpus()

    before = needed()
    _edit_stack(environments, distributed)
    verdicts = _by_check(_doctor(account, environments))
    assert verdicts["GPU facts"].status == "ok" and "g5.12xlarge match" in verdicts["GPU facts"].message
    after = needed()
    # Multi-node jobs run on on-demand capacity only: their maximum adds to that quota, not to Spot.
    assert after[("gpu", "on-demand")] - before[("gpu", "on-demand")] == 96
    assert after[("gpu", "spot")] == before[("gpu", "spot")]


def test_the_gpu_record_matches_what_ec2_answers(aws: str) -> None:
    """moto ships DescribeInstanceTypes answers captured from EC2: the record must agree with them."""
    from infra.gpu_instances import gpu_instances

    recorded = gpu_instances()
    answer = aws_client(aws, "ec2").describe_instance_types(InstanceTypes=list(recorded))["InstanceTypes"]
    assert {i["InstanceType"] for i in answer} == set(recorded)
    for info in answer:
        facts = recorded[info["InstanceType"]]
        gpus = sum(g["Count"] for g in info["GpuInfo"]["Gpus"])
        assert (gpus, info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"] // 1024) == (
            facts.gpus,
            facts.vcpus,
            facts.memory_gib,
        ), info["InstanceType"]
        assert bool(info["NetworkInfo"].get("EfaSupported")) == facts.efa, info["InstanceType"]


def test_a_gpu_record_out_of_date_with_ec2_fails_naming_the_difference(
    account: str, environments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infra.gpu_instances as record

    stale = dict(record.gpu_instances())
    stale["g5.12xlarge"] = record.GpuInstance("g5.12xlarge", gpus=4, vcpus=48, memory_gib=192, efa=False)
    monkeypatch.setattr(record, "gpu_instances", lambda: stale)
    _edit_stack(
        environments,
        lambda platform: platform["compute"].update(
            distributed={"gpus_per_node": 4, "instance_types": ["g5.12xlarge"], "max_vcpus": 96}
        ),
    )
    verdict = _by_check(_doctor(account, environments))["GPU facts"]
    assert verdict.status == "fail"
    assert (
        verdict.message
        == "gpu_instances.yaml is out of date: g5.12xlarge: EC2 says 4 GPUs, 48 vCPUs, EFA True"
    )
