"""What a release job needs before it touches an environment: its Pulumi stack, a path to the cluster's
API from the runner, and a path to the Prefect API. Each is one function the workflow calls through
`mlops ci`, so the logic is tested here rather than written in YAML.

Where things run (the reason for each helper):
- the job runs on a GitHub-hosted runner, outside every VPC;
- the Kubernetes provider and the Helm releases of `pulumi up` talk to the EKS API from that runner, so
  the cluster's public endpoint admits the runner's own address for the run (`runner_cidr`);
- a self-hosted Prefect server is a ClusterIP service: the runner reaches it through
  `kubectl port-forward` over that same endpoint (`open_prefect_tunnel`);
- SSM, ECR, STS and Batch are public AWS endpoints reached with the job's credentials.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

CHECKIP_URL = "https://checkip.amazonaws.com"
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class ReleasePreflightError(Exception):
    """Something a release job needs is missing; the message names it and the fix."""


def runner_cidr(url: str | None = None) -> str:
    """This machine's public IPv4 address as a /32, as AWS sees it (CHECKIP_URL answers with it)."""
    with urllib.request.urlopen(
        url or os.environ.get("MLOPS_CHECKIP_URL", CHECKIP_URL), timeout=30
    ) as answer:
        text = answer.read().decode().strip()
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ReleasePreflightError(
            f"the address service answered {text[:60]!r}, not an IPv4 address"
        ) from None
    return f"{address}/32"


def stack_secrets_provider(stack_file: Path) -> str | None:
    """The `secretsprovider` recorded in a stack file by `pulumi stack init --secrets-provider`."""
    document = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None
    return (document or {}).get("secretsprovider")


def stack_select_command(env: str, stack_file: Path, environ: dict[str, str]) -> list[str]:
    """`pulumi stack select --create` for `env`, refusing a stack whose secrets could not be read later.

    A stack created in CI with a KMS provider that is not recorded in the committed stack file would get
    a new data key on every run; so the provider must be in the file (one-time setup, README) unless a
    passphrase or Pulumi Cloud (its own secrets provider) is used.
    """
    provider = stack_secrets_provider(stack_file)
    backend = environ.get("PULUMI_BACKEND_URL", "")
    cloud = backend == "" or backend.startswith("https://api.pulumi.com")
    if cloud and not environ.get("PULUMI_ACCESS_TOKEN"):
        raise ReleasePreflightError(
            "PULUMI_BACKEND_URL is not set, so Pulumi Cloud is the backend, and PULUMI_ACCESS_TOKEN is not set"
        )
    if provider is None and not cloud and not any(environ.get(v) for v in PASSPHRASE_VARIABLES):
        raise ReleasePreflightError(
            f"{stack_file} records no secretsprovider: run the one-time `pulumi stack init {env} "
            "--secrets-provider awskms://alias/mlops-pulumi-secrets` and commit the file (README)"
        )
    command = ["pulumi", "stack", "select", "--create", env]
    if provider:
        command += ["--secrets-provider", provider]
    return command


def kubeconfig_command(cluster: str, region: str, kubeconfig: Path) -> list[str]:
    return [
        "aws",
        "eks",
        "update-kubeconfig",
        "--name",
        cluster,
        "--region",
        region,
        "--kubeconfig",
        str(kubeconfig),
    ]


def port_forward_command(
    kubeconfig: Path, namespace: str, service: str, local_port: int, remote_port: int
) -> list[str]:
    return [
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "port-forward",
        f"service/{service}",
        f"{local_port}:{remote_port}",
        "--address",
        "127.0.0.1",
    ]


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise ReleasePreflightError(f"`{tool}` is not on PATH (GitHub's ubuntu runners have it)")


def open_prefect_tunnel(
    cluster: str, region: str, namespace: str, work_dir: Path, local_port: int, wait_seconds: float
) -> tuple[str, int]:
    """Forward the in-cluster Prefect API to 127.0.0.1:`local_port`; returns its URL and the forwarder's PID.

    The forwarder outlives this process (its own session), so later steps of the job use the URL; the
    runner ends it with the job. Waits until the API answers its health check, at most `wait_seconds`.
    """
    for tool in ("aws", "kubectl"):
        _require(tool)
    work_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = work_dir / "kubeconfig"
    subprocess.run(kubeconfig_command(cluster, region, kubeconfig), check=True, capture_output=True)
    log = (work_dir / "port-forward.log").open("ab")
    forwarder = subprocess.Popen(
        port_forward_command(kubeconfig, namespace, "prefect-server", local_port, 4200),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{local_port}/api"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if forwarder.poll() is not None:
            raise ReleasePreflightError(
                f"kubectl port-forward to the Prefect server exited ({forwarder.returncode}); see {log.name}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                if answer.status == 200:
                    return url, forwarder.pid
        except OSError:
            time.sleep(1)
    forwarder.terminate()
    raise ReleasePreflightError(f"the Prefect API did not answer at {url}/health within {wait_seconds:.0f} s")
