"""Helm releases of the plan against the dated chart record, and the render that verifies the record.

Offline: every release names a chart of `infra/facts/helm_charts.yaml`, at its recorded version and
repository, and sets only values that the chart's values schema accepted at that version.
Online (`mlops ci verify-charts`, in the workflows before `pulumi up`): `helm template` fetches each chart
at its pinned version (a version the repository does not publish fails here) and applies the chart's
values schema to the planned values; kubeconform then validates the rendered manifests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.charts import ChartPin, chart_pins
from infra.fidelity.findings import CheckReport
from infra.offline import Plan

RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class PlannedRelease:
    resource: str
    name: str
    chart: str
    version: str | None
    repository: str | None
    namespace: str
    values: dict[str, Any]


def planned_releases(plan: Plan) -> list[PlannedRelease]:
    return [
        PlannedRelease(
            resource=r.name,
            name=r.inputs.get("name", r.name),
            chart=r.inputs["chart"],
            version=r.inputs.get("version"),
            repository=(r.inputs.get("repositoryOpts") or {}).get("repo"),
            namespace=r.inputs.get("namespace", "default"),
            values=r.inputs.get("values") or {},
        )
        for r in plan.of_type(RELEASE)
    ]


def value_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of a values tree (lists are leaves: the schema types them whole)."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from value_paths(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def _accepted(path: str, pin: ChartPin) -> bool:
    return any(path == known or path.startswith(f"{known}.") for known in pin.values_schema_paths)


def check_helm(plan: Plan) -> CheckReport:
    report = CheckReport("helm", "infra/facts/helm_charts.yaml (verified by `mlops ci verify-charts`)")
    pins = chart_pins()
    for release in planned_releases(plan):
        report.resources += 1
        pin = pins.get(release.chart)
        report.checked += 1
        if pin is None:
            report.add(release.resource, "chart", f"{release.chart!r} is not in infra/facts/helm_charts.yaml")
            continue
        if not release.version:
            report.add(
                release.resource, "version", f"chart {release.chart} is not pinned (pin {pin.version})"
            )
        elif release.version != pin.version:
            report.add(
                release.resource,
                "version",
                f"chart {release.chart} {release.version!r} is not the recorded {pin.version!r} ({pin.source})",
            )
        if release.repository != pin.repository:
            report.add(
                release.resource, "repositoryOpts.repo", f"{release.repository!r} is not {pin.repository}"
            )
        for path in value_paths(release.values):
            report.checked += 1
            if not _accepted(path, pin):
                report.add(
                    release.resource,
                    f"values.{path}",
                    f"not among the values recorded as accepted by {release.chart} {pin.version}'s schema",
                )
    return report


def template_command(release: PlannedRelease, values_file: Path) -> list[str]:
    """`helm template` of a release at its pinned version with the planned values."""
    return [
        "helm",
        "template",
        release.name,
        release.chart,
        "--repo",
        release.repository or "",
        "--version",
        release.version or "",
        "--namespace",
        release.namespace,
        "--values",
        str(values_file),
    ]


def kubeconform_command(kubernetes_version: str) -> list[str]:
    """Validate manifests on stdin against the cluster's Kubernetes API (CRDs have no built-in schema)."""
    return [
        "kubeconform",
        "-strict",
        "-summary",
        "-ignore-missing-schemas",
        "-kubernetes-version",
        f"{kubernetes_version}.0",
        "-",
    ]
