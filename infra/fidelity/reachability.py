"""Can each release job reach what it calls, from where it runs?

The release workflow's jobs run on GitHub-hosted runners: outside every VPC, with AWS credentials from
the job's OIDC exchange. What each step reaches, and what makes it reachable:
- AWS APIs (STS, SSM, ECR, Batch, SageMaker, S3): public endpoints; the credentials step comes first.
- the EKS API (the Kubernetes provider and Helm inside `pulumi up`): the cluster's public endpoint must
  admit the runner, so `mlops ci runner-cidr` runs before `pulumi up`, which passes the address as
  `orchestrator.ci_runner_cidr`, and the plan built with it must list it in `publicAccessCidrs`.
- the Prefect API (`mlops flows deploy|run`): a self-hosted server is a ClusterIP service, reached through
  `mlops ci prefect-api` (a port-forward) before any flows step; Prefect Cloud needs PREFECT_API_URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.fidelity.findings import CheckReport
from infra.offline import Plan

EXAMPLE_RUNNER_CIDR = "203.0.113.10/32"  # TEST-NET-3: a stand-in for the runner's address
RUNNER_CIDR_CONFIG = "mlops-blueprint:platform.orchestrator.ci_runner_cidr=${MLOPS_RUNNER_CIDR}"


def _steps(job: dict[str, Any]) -> list[str]:
    return [f"{step.get('uses', '')} {step.get('run', '')}".strip() for step in job.get("steps", [])]


def _first(steps: list[str], marker: str) -> int | None:
    return next((i for i, text in enumerate(steps) if marker in text), None)


def check_reachability(
    workflow: dict[str, Any], env: str, plan_with_runner: Callable[[str], Plan]
) -> CheckReport:
    """The job deploying `env` in `workflow` against the plan of `env` as the job would apply it."""
    report = CheckReport("reachability", "the release workflow against the plan")
    job = workflow.get("jobs", {}).get(env)
    where = f"release.yml job {env}"
    if job is None:
        report.add(where, "jobs", f"no job deploys {env}")
        return report
    steps = _steps(job)
    report.resources += 1
    planned: list[Plan] = []

    def plan_as_applied() -> Plan:
        if not planned:
            planned.append(plan_with_runner(EXAMPLE_RUNNER_CIDR))
        return planned[0]

    credentials = next(
        (i for i, step in enumerate(job.get("steps", [])) if (step.get("with") or {}).get("role-arn")), None
    )
    first_aws = min((i for i, s in enumerate(steps) if "/mlops " in s or "/pulumi " in s), default=None)
    report.checked += 1
    if credentials is None or (first_aws is not None and credentials > first_aws):
        report.add(
            where, "steps", "no AWS credentials (the platform action with role-arn) before the first AWS call"
        )

    pulumi_up = _first(steps, f"pulumi up -s {env}")
    if pulumi_up is not None:
        plan = plan_as_applied()
        if plan.of_type("kubernetes:helm.sh/v3:Release") or plan.of_type("kubernetes:core/v1:Namespace"):
            report.checked += 1
            runner = _first(steps, "mlops ci runner-cidr")
            if runner is None or runner > pulumi_up:
                report.add(where, "steps", "`mlops ci runner-cidr` does not run before `pulumi up`")
            if RUNNER_CIDR_CONFIG not in steps[pulumi_up]:
                report.add(where, "pulumi up", f"does not pass --config {RUNNER_CIDR_CONFIG!r}")
            for cluster in plan.of_type("aws:eks/cluster:Cluster"):
                vpc = cluster.inputs.get("vpcConfig") or {}
                if not (
                    vpc.get("endpointPublicAccess")
                    and EXAMPLE_RUNNER_CIDR in (vpc.get("publicAccessCidrs") or [])
                ):
                    report.add(
                        cluster.name,
                        "vpcConfig",
                        "the cluster API does not admit the release runner: its Kubernetes resources cannot be applied",
                    )

    flows = _first(steps, f"mlops flows deploy --env {env}")
    flows = flows if flows is not None else _first(steps, "mlops flows run")
    if flows is not None:
        report.checked += 1
        contract = plan_as_applied().outputs.get("platformContract", {})
        api_url = (contract.get("orchestrator") or {}).get("api_url")
        if api_url and ".svc.cluster.local" in api_url:
            tunnel = _first(steps, f"mlops ci prefect-api --env {env}")
            if tunnel is None or tunnel > flows:
                report.add(
                    where,
                    "steps",
                    f"the Prefect API {api_url} is inside the cluster and no `mlops ci prefect-api` step opens a way to it",
                )
        elif "PREFECT_API_URL" not in (job.get("env") or {}):
            report.add(where, "env", "Prefect Cloud mode needs PREFECT_API_URL in the job's environment")
    return report
