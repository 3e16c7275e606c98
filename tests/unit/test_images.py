"""Publishing the platform image to an environment's ECR repositories (moto; docker replaced)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.offline import Plan
from mlops.cli import app
from mlops.contract import PlatformContract
from mlops.images import ImageError, ImageRef, image_targets, publish
from mlops.settings import load_settings
from tests.aws_emulator import aws_client

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture(scope="module")
def dev_contract(plans: dict[str, Plan]) -> PlatformContract:
    """The contract `pulumi up -s dev` exports (Pulumi's mocks), tagged with a release."""
    exported = PlatformContract.model_validate(plans["dev"].outputs["platformContract"])
    return exported.model_copy(
        update={
            "compute": exported.compute.model_copy(
                update={"image_uri": f"{REGISTRY}/mlops-dev-training:abc123"}
            ),
            "serving": exported.serving.model_copy(
                update={"image_uri": f"{REGISTRY}/mlops-dev-serving:abc123"}
            ),
        }
    )


@pytest.fixture
def repositories(aws: str) -> None:
    for name in ("mlops-dev-training", "mlops-dev-serving"):
        aws_client(aws, "ecr").create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")


class RecordingDocker:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, args: Sequence[str], stdin: str | None) -> None:
        self.calls.append((list(args), stdin))


def test_image_uris_come_from_the_contract(dev_contract: PlatformContract, platform: object) -> None:
    assert [ref.uri for ref in image_targets(dev_contract)] == [
        f"{REGISTRY}/mlops-dev-training:abc123",
        f"{REGISTRY}/mlops-dev-serving:abc123",
    ]
    assert ImageRef.parse(f"{REGISTRY}/a/b:1").repository == "a/b"
    with pytest.raises(ImageError, match="not a registry/repository:tag"):
        ImageRef.parse("no-tag")
    with pytest.raises(ImageError, match="the local environment runs no container image"):
        image_targets(platform.contract)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("repositories")
def test_builds_once_logs_in_and_pushes_every_target(dev_contract: PlatformContract, aws: str) -> None:
    docker = RecordingDocker()
    outcome = publish(dev_contract, Path("/src"), aws_client(aws, "ecr"), docker)
    assert set(outcome.values()) == {"pushed"}
    (build, _), (login, password), *pushes = docker.calls
    assert build == [
        "build",
        "--platform",
        "linux/amd64",
        "--tag",
        f"{REGISTRY}/mlops-dev-training:abc123",
        "--tag",
        f"{REGISTRY}/mlops-dev-serving:abc123",
        "/src",
    ]
    assert login[:4] == ["login", "--username", "AWS", "--password-stdin"] and login[4] == REGISTRY
    assert password and password not in " ".join(login)  # the password goes through stdin only
    assert [call for call, _ in pushes] == [["push", uri] for uri in outcome]


@pytest.mark.usefixtures("repositories")
def test_a_tag_already_in_the_registry_is_not_pushed_again(dev_contract: PlatformContract, aws: str) -> None:
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    aws_client(aws, "ecr").put_image(
        repositoryName="mlops-dev-training", imageManifest=manifest, imageTag="abc123"
    )
    docker = RecordingDocker()
    outcome = publish(dev_contract, Path("/src"), aws_client(aws, "ecr"), docker)
    assert outcome == {
        f"{REGISTRY}/mlops-dev-training:abc123": "already in the registry",
        f"{REGISTRY}/mlops-dev-serving:abc123": "pushed",
    }
    assert docker.calls[0][0][-3:] == ["--tag", f"{REGISTRY}/mlops-dev-serving:abc123", "/src"]


@pytest.mark.usefixtures("repositories")
def test_cli_publishes_with_the_docker_on_path_and_stops_on_its_failure(
    dev_contract: PlatformContract, aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_client(aws, "ssm").put_parameter(
        Name=load_settings("dev").contract_parameter(), Value=dev_contract.to_json(), Type="String"
    )
    log = tmp_path / "docker.log"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$1" != "${{FAIL_ON:-}}" ]\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")

    ok = CliRunner().invoke(app, ["image", "publish", "--env", "dev"])
    assert ok.exit_code == 0, ok.output
    assert f"{REGISTRY}/mlops-dev-serving:abc123: pushed" in ok.output
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["build", "login", "push", "push"]

    aws_client(aws, "ecr").delete_repository(repositoryName="mlops-dev-serving", force=True)
    aws_client(aws, "ecr").create_repository(repositoryName="mlops-dev-serving")
    monkeypatch.setenv("FAIL_ON", "push")
    failed = CliRunner().invoke(app, ["image", "publish", "--env", "dev"])
    assert failed.exit_code == 1 and "docker push failed with exit code 1" in failed.output
