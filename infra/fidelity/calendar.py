"""Pinned versions against dated support calendars (`infra/facts/support_calendar.yaml`).

A value near or past its end of support, a value the calendar does not know, and a calendar nobody
refreshed for too long are findings: the blueprint warns before AWS refuses to create the resource.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.fidelity.findings import CheckReport
from infra.offline import Plan

CALENDAR = Path(__file__).parents[1] / "facts" / "support_calendar.yaml"


@cache
def support_calendar() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CALENDAR.read_text())
    return document


def _day(value: str) -> date:
    return date.fromisoformat(str(value))


class _Calendar:
    def __init__(self, report: CheckReport, today: date, calendar: dict[str, Any]) -> None:
        self.report = report
        self.today = today
        self.warn = timedelta(days=int(calendar["warn_days"]))

    def ends(self, resource: str, path: str, value: str, what: str, ends: str | None, source: str) -> None:
        self.report.checked += 1
        if ends is None:
            self.report.add(
                resource,
                path,
                f"{what} {value!r} is not in the support calendar ({source}): record its dates",
            )
            return
        end = _day(ends)
        if end <= self.today:
            self.report.add(
                resource, path, f"{what} {value!r} reached its end of support on {end} ({source})"
            )
        elif end - self.today <= self.warn:
            days = (end - self.today).days
            self.report.add(
                resource,
                path,
                f"{what} {value!r} ends support on {end}, in {days} days ({source}): move to a newer one",
            )


def check_calendar(
    plan: Plan, today: date | None = None, calendar: dict[str, Any] | None = None
) -> CheckReport:
    """EKS versions, node AMI types, Batch image types and GPU families, RDS engine versions."""
    calendar = calendar or support_calendar()
    today = today or date.today()
    report = CheckReport("support-calendar", f"infra/facts/support_calendar.yaml of {calendar['recorded']}")
    if today - _day(calendar["recorded"]) > timedelta(days=int(calendar["max_age_days"])):
        report.add(
            "infra/facts/support_calendar.yaml",
            "recorded",
            f"recorded {calendar['recorded']}: refresh it from its sources",
        )
    check = _Calendar(report, today, calendar)
    eks, amis, images, rds = (
        calendar["eks_kubernetes"],
        calendar["eks_ami_types"],
        calendar["batch_image_types"],
        calendar["rds_postgres_major"],
    )
    for resource in plan.resources:
        inputs = resource.inputs
        if resource.type == "aws:eks/cluster:Cluster":
            report.resources += 1
            version = str(inputs.get("version"))
            entry = eks["versions"].get(version) or {}
            check.ends(
                resource.name,
                "version",
                version,
                "EKS Kubernetes version",
                entry.get("standard_until"),
                eks["source"],
            )
        elif resource.type == "aws:eks/nodeGroup:NodeGroup":
            report.resources += 1
            ami = str(inputs.get("amiType"))
            ends = amis["ends"].get(ami, "9999-12-31" if ami in amis["supported"] else None)
            check.ends(resource.name, "amiType", ami, "EKS AMI type", ends, amis["source"])
        elif resource.type == "aws:batch/computeEnvironment:ComputeEnvironment":
            report.resources += 1
            compute = inputs.get("computeResources") or {}
            for index, ec2 in enumerate(compute.get("ec2Configurations") or []):
                image = str(ec2.get("imageType"))
                ends = images["ends"].get(image, "9999-12-31" if image in images["supported"] else None)
                path = f"computeResources.ec2Configurations[{index}].imageType"
                check.ends(resource.name, path, image, "Batch image type", ends, images["source"])
                if image == "ECS_AL2023_NVIDIA":
                    for instance in compute.get("instanceTypes") or []:
                        if str(instance).split(".")[0] in images["unsupported_gpu_families"]:
                            report.add(
                                resource.name,
                                "computeResources.instanceTypes",
                                f"{instance} is not supported by {image} ({images['source']})",
                            )
        elif resource.type == "aws:rds/instance:Instance" and inputs.get("engine") == "postgres":
            report.resources += 1
            major = str(inputs.get("engineVersion", "")).split(".")[0]
            check.ends(
                resource.name,
                "engineVersion",
                major,
                "RDS PostgreSQL major version",
                rds["ends"].get(major),
                rds["source"],
            )
    return report
