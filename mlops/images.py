"""Publishing the platform image: build it once, push it to the environment's ECR repositories.

The contract names both image URIs (the training/flows image and the serving image, tagged with
the release by `infra/`); a tag already in a repository is not pushed again (the repositories'
tags are immutable, and a re-run of the release should succeed).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.contract import AwsCompute, AwsServing, PlatformContract

Runner = Callable[[Sequence[str], str | None], None]


class ImageError(Exception):
    """The environment runs no image, or docker failed."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    @classmethod
    def parse(cls, uri: str) -> ImageRef:
        location, _, tag = uri.rpartition(":")
        registry, _, repository = location.partition("/")
        if not (registry and repository and tag) or "/" in tag:
            raise ImageError(f"{uri!r} is not a registry/repository:tag image URI")
        return cls(registry, repository, tag)


def image_targets(contract: PlatformContract) -> list[ImageRef]:
    """The image URIs an environment runs, from its contract."""
    if not isinstance(contract.compute, AwsCompute):
        raise ImageError(f"the {contract.environment} environment runs no container image (local processes)")
    uris = [contract.compute.image_uri]
    if isinstance(contract.serving, AwsServing):
        uris.append(contract.serving.image_uri)
    return [ImageRef.parse(uri) for uri in dict.fromkeys(uris)]


def run_docker(args: Sequence[str], stdin: str | None = None) -> None:
    """Run one docker command; its output streams to the console (builds are long)."""
    result = subprocess.run(["docker", *args], input=stdin, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"docker {args[0]} failed with exit code {result.returncode}")


def _already_pushed(ecr: Any, image: ImageRef) -> bool:
    try:
        ecr.describe_images(repositoryName=image.repository, imageIds=[{"imageTag": image.tag}])
        return True
    except ecr.exceptions.ImageNotFoundException:
        return False


def publish(
    contract: PlatformContract, context: Path, ecr: Any, docker: Runner = run_docker
) -> dict[str, str]:
    """Build the image from `context` and push it to every target; returns what happened per URI."""
    targets = image_targets(contract)
    pending = [image for image in targets if not _already_pushed(ecr, image)]
    outcome = {image.uri: "already in the registry" for image in targets if image not in pending}
    if not pending:
        return outcome
    build = ["build", "--platform", "linux/amd64"]
    for image in pending:
        build += ["--tag", image.uri]
    docker([*build, str(context)], None)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    for registry in dict.fromkeys(image.registry for image in pending):
        docker(["login", "--username", user, "--password-stdin", registry], password)
    for image in pending:
        docker(["push", image.uri], None)
        outcome[image.uri] = "pushed"
    return outcome
