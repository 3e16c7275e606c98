"""`mlops doctor`: the preflight a user runs with their own credentials before `pulumi up`.

Each check asks AWS (or the Pulumi backend) one question and answers in one line: who and where you
are, whether the state backend and the secrets provider are reachable, whether the stack exists or will
be created, whether every bucket name is still free, whether the region offers the GPU instance types
and the account's vCPU quotas cover the configured maximums, and whether EKS still supports the pinned
Kubernetes version.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

Status = Literal["ok", "warn", "fail"]
ClientFactory = Callable[[str, str], Any]
PROJECT = "mlops-blueprint"
# EC2 vCPU quotas (Service Quotas, service code ec2) by instance class and purchase option.
QUOTAS = {
    ("gpu", "on-demand"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("gpu", "spot"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("standard", "on-demand"): (
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ),
    ("standard", "spot"): ("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
}
SUPPORT_WARN_DAYS = 90


@dataclass(frozen=True)
class Verdict:
    check: str
    status: Status
    message: str


def _error(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc)


def _family(instance_type: str) -> str:
    return "gpu" if instance_type.split(".")[0][:1] in ("g", "v") else "standard"


class Doctor:
    """The checks for one environment; `clients(service, region)` makes the boto3 clients."""

    def __init__(self, env: str, environments: Path, clients: ClientFactory, environ: dict[str, str]) -> None:
        from infra.offline import read_stack_config

        self.env = env
        self.stack_file = environments / f"Pulumi.{env}.yaml"
        self.config, self.region = read_stack_config(environments, env)
        self.clients = clients
        self.environ = environ

    def run(self) -> list[Verdict]:
        checks: tuple[tuple[str, Callable[[], Verdict]], ...] = (
            ("identity", self.identity),
            ("backend", self.backend),
            ("secrets provider", self.secrets_provider),
            ("stack", self.stack),
            ("bucket names", self.bucket_names),
            ("GPU instance types", self.instance_types),
            ("vCPU quotas", self.vcpu_quotas),
            ("GPU facts", self.gpu_facts),
            ("EKS version", self.kubernetes_version),
        )
        verdicts = []
        for name, check in checks:
            try:
                verdicts.append(check())
            except (ClientError, BotoCoreError) as exc:
                verdicts.append(Verdict(name, "fail", _error(exc)))
            if name == "identity" and verdicts[-1].status == "fail":
                return verdicts  # every other check asks AWS with the same credentials
        return verdicts

    def identity(self) -> Verdict:
        who = self.clients("sts", self.region).get_caller_identity()
        configured = self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION")
        where = f"account {who['Account']} as {who['Arn']}, stack region {self.region}"
        if configured and configured != self.region:
            return Verdict(
                "identity", "warn", f"{where}; your AWS_REGION is {configured}, the stack uses {self.region}"
            )
        return Verdict("identity", "ok", where)

    def _backend(self) -> urllib.parse.ParseResult:
        return urllib.parse.urlparse(self.environ.get("PULUMI_BACKEND_URL", ""))

    def backend(self) -> Verdict:
        url = self._backend()
        if url.scheme == "s3":
            self.clients("s3", self.region).head_bucket(Bucket=url.netloc)
            return Verdict("backend", "ok", f"state bucket s3://{url.netloc} is reachable")
        if url.scheme == "file":
            path = Path(url.path)
            status: Status = "ok" if path.is_dir() else "fail"
            return Verdict(
                "backend", status, f"state directory {path} {'exists' if path.is_dir() else 'does not exist'}"
            )
        if not self.environ.get("PULUMI_ACCESS_TOKEN"):
            return Verdict(
                "backend",
                "fail",
                "PULUMI_BACKEND_URL is not set (Pulumi Cloud) and PULUMI_ACCESS_TOKEN is not set",
            )
        return Verdict("backend", "ok", "Pulumi Cloud with PULUMI_ACCESS_TOKEN")

    def secrets_provider(self) -> Verdict:
        from mlops.release_runner import PASSPHRASE_VARIABLES, stack_secrets_provider

        provider = stack_secrets_provider(self.stack_file)
        if provider and provider.startswith("awskms://"):
            parsed = urllib.parse.urlparse(provider)
            key = urllib.parse.unquote(parsed.netloc + parsed.path)
            region = urllib.parse.parse_qs(parsed.query).get("region", [self.region])[0]
            self.clients("kms", region).describe_key(KeyId=key)
            return Verdict("secrets provider", "ok", f"KMS key {key} in {region} is usable")
        if provider == "passphrase" or (
            provider is None and any(self.environ.get(v) for v in PASSPHRASE_VARIABLES)
        ):
            if any(self.environ.get(v) for v in PASSPHRASE_VARIABLES):
                return Verdict("secrets provider", "ok", "passphrase from PULUMI_CONFIG_PASSPHRASE(_FILE)")
            return Verdict(
                "secrets provider", "fail", "passphrase provider but PULUMI_CONFIG_PASSPHRASE is not set"
            )
        if provider:
            return Verdict("secrets provider", "ok", f"{provider} (not checked here)")
        if self._backend().scheme in ("s3", "file"):
            return Verdict(
                "secrets provider",
                "fail",
                f"{self.stack_file.name} records no secretsprovider: run `pulumi stack init {self.env} "
                "--secrets-provider awskms://alias/mlops-pulumi-secrets` once and commit the file",
            )
        return Verdict("secrets provider", "ok", "Pulumi Cloud's own")

    @cached_property
    def _stack_exists(self) -> bool | None:
        """Whether the stack's state is in an s3 backend (None for other backends); asked once."""
        url = self._backend()
        if url.scheme != "s3":
            return None
        prefix = url.path.strip("/")
        key = "/".join(p for p in (prefix, ".pulumi", "stacks", PROJECT, f"{self.env}.json") if p)
        try:
            self.clients("s3", self.region).head_object(Bucket=url.netloc, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def stack(self) -> Verdict:
        exists = self._stack_exists
        if exists is None:
            return Verdict(
                "stack", "ok", f"{self.env}: selected or created by `mlops ci pulumi-stack --env {self.env}`"
            )
        if exists:
            return Verdict("stack", "ok", f"{self.env} exists in the backend")
        return Verdict(
            "stack",
            "ok",
            f"{self.env} does not exist yet: `mlops ci pulumi-stack` creates it on the first run",
        )

    def bucket_names(self) -> Verdict:
        from infra.context import StackContext

        names = [
            StackContext(self.config, self.region, "0").bucket_name(p)
            for p in ("raw", "curated", "artifacts", "quarantine", "access-logs")
        ]
        stack_exists = self._stack_exists
        s3 = self.clients("s3", self.region)
        taken, ours = [], []
        for name in names:
            try:
                s3.head_bucket(Bucket=name)
                ours.append(name)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("403", "AccessDenied", "Forbidden"):
                    taken.append(name)
                elif code not in ("404", "NoSuchBucket", "NotFound"):
                    raise
        if taken:
            return Verdict(
                "bucket names",
                "fail",
                f"taken by another account: {', '.join(taken)}; set platform.name_suffix in {self.stack_file.name}",
            )
        if ours and stack_exists is False:
            return Verdict(
                "bucket names",
                "fail",
                f"already exist in this account but not in the stack: {', '.join(ours)} (import them or set name_suffix)",
            )
        return Verdict(
            "bucket names", "ok", f"{len(names) - len(ours)} free, {len(ours)} already the stack's"
        )

    def _gpu_types(self) -> list[str]:
        nodes = self.config.orchestrator.gpu_nodes
        distributed = self.config.compute.distributed
        return sorted(
            {
                *self.config.compute.gpu_instance_types,
                *(nodes.instance_types if nodes else ()),
                *(distributed.instance_types if distributed else ()),
            }
        )

    def gpu_facts(self) -> Verdict:
        """The recorded GPU, vCPU and EFA facts of the multi-node training types, as EC2 reports them."""
        from infra.gpu_instances import GPU_RECORD, gpu_instances

        distributed = self.config.compute.distributed
        if distributed is None:
            return Verdict("GPU facts", "ok", "no multi-node training configured")
        answer = self.clients("ec2", self.region).describe_instance_types(
            InstanceTypes=list(distributed.instance_types)
        )
        recorded, wrong = gpu_instances(), []
        for info in answer["InstanceTypes"]:
            name, facts = info["InstanceType"], recorded[info["InstanceType"]]
            gpus = sum(g.get("Count", 0) for g in info.get("GpuInfo", {}).get("Gpus", []))
            seen = (
                gpus,
                info["VCpuInfo"]["DefaultVCpus"],
                bool(info.get("NetworkInfo", {}).get("EfaSupported")),
            )
            if seen != (facts.gpus, facts.vcpus, facts.efa):
                wrong.append(f"{name}: EC2 says {seen[0]} GPUs, {seen[1]} vCPUs, EFA {seen[2]}")
        if wrong:
            return Verdict("GPU facts", "fail", f"{GPU_RECORD.name} is out of date: " + "; ".join(wrong))
        return Verdict("GPU facts", "ok", f"{', '.join(distributed.instance_types)} match {GPU_RECORD.name}")

    def instance_types(self) -> Verdict:
        wanted = [t for t in self._gpu_types() if "." in t]
        ec2 = self.clients("ec2", self.region)
        offered = {
            o["InstanceType"]
            for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
                LocationType="region", Filters=[{"Name": "instance-type", "Values": wanted}]
            )
            for o in page["InstanceTypeOfferings"]
        }
        missing = [t for t in wanted if t not in offered]
        if missing:
            return Verdict(
                "GPU instance types", "fail", f"not offered in {self.region}: {', '.join(missing)}"
            )
        families = [t for t in self._gpu_types() if "." not in t]
        note = f" (families {', '.join(families)} not checked)" if families else ""
        return Verdict("GPU instance types", "ok", f"{', '.join(wanted)} offered in {self.region}{note}")

    def _needed_vcpus(self) -> dict[tuple[str, str], int]:
        compute, orchestrator = self.config.compute, self.config.orchestrator
        needed = {key: 0 for key in QUOTAS}
        needed[("gpu", "spot")] += compute.gpu_max_vcpus
        needed[("gpu", "on-demand")] += compute.gpu_max_vcpus
        needed[("standard", "spot")] += compute.cpu_max_vcpus
        if compute.distributed is not None:  # multi-node jobs run on on-demand capacity only
            needed[("gpu", "on-demand")] += compute.distributed.max_vcpus
        groups = [g for g in (orchestrator.cpu_nodes, orchestrator.gpu_nodes) if g]
        types = sorted({t for g in groups for t in g.instance_types})
        sizes = {
            t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"]
            for t in self.clients("ec2", self.region).describe_instance_types(InstanceTypes=types)[
                "InstanceTypes"
            ]
        }
        for group in groups:
            largest = max(sizes.get(t, 0) for t in group.instance_types)
            needed[(_family(group.instance_types[0]), "on-demand")] += group.max_size * largest
        return needed

    def vcpu_quotas(self) -> Verdict:
        quotas = self.clients("service-quotas", self.region)
        short = []
        for key, vcpus in self._needed_vcpus().items():
            if not vcpus:
                continue
            code, name = QUOTAS[key]
            value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
            if value < vcpus:
                short.append(f"{name} ({code}) is {value:g} vCPUs, the config needs {vcpus}")
        if short:
            return Verdict("vCPU quotas", "fail", "; ".join(short) + ": request increases in Service Quotas")
        return Verdict(
            "vCPU quotas", "ok", "cover the configured maximums (GPU and standard, spot and on-demand)"
        )

    def kubernetes_version(self) -> Verdict:
        version = self.config.orchestrator.kubernetes_version
        answer = self.clients("eks", self.region).describe_cluster_versions(clusterVersions=[version])
        found = [v for v in answer.get("clusterVersions", []) if v.get("clusterVersion") == version]
        if not found:
            return Verdict("EKS version", "fail", f"EKS does not offer Kubernetes {version} in {self.region}")
        info = found[0]
        status = info.get("versionStatus") or str(info.get("status", "")).upper().replace("-", "_")
        if status == "UNSUPPORTED":
            return Verdict("EKS version", "fail", f"Kubernetes {version} is no longer supported by EKS")
        end = info.get("endOfStandardSupportDate")
        if status == "EXTENDED_SUPPORT":
            return Verdict(
                "EKS version", "warn", f"Kubernetes {version} is in extended support (extra cost); move on"
            )
        if isinstance(end, datetime) and end - datetime.now(UTC) < timedelta(days=SUPPORT_WARN_DAYS):
            return Verdict(
                "EKS version", "warn", f"Kubernetes {version} leaves standard support on {end.date()}"
            )
        until = f" until {end.date()}" if isinstance(end, datetime) else ""
        return Verdict("EKS version", "ok", f"Kubernetes {version} in standard support{until}")


def default_clients(service: str, region: str) -> Any:
    from pipelines.adapters.aws.session import client

    return client(service, region)


def run_doctor(env: str, environments: Path, clients: ClientFactory = default_clients) -> list[Verdict]:
    return Doctor(env, environments, clients, dict(os.environ)).run()
