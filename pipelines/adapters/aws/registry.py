"""Model registry on SageMaker Model Registry: a model package group per model, a package per version.

Each package's customer metadata carries the run key, artifact location, commit and data snapshot
ids (visible in the console); the full record (metrics, parameters, lineage) is a JSON document in
the artifact store, referenced from the metadata, because metadata values are limited to 256
characters. Champion = the latest approved package.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pipelines.adapters.aws.session import client
from pipelines.adapters.local.registry import RegistryError
from pipelines.ports import ApprovalStatus, ArtifactStore, ModelCandidate, ModelVersion

RUN_KEY = "mlops:run-key"
RECORD = "mlops:record-uri"
METADATA_VALUE_LIMIT = 256


class SageMakerRegistry:
    """RegistryPort on SageMaker model package groups named `<prefix><model>`."""

    def __init__(self, group_prefix: str, records: ArtifactStore, sagemaker: Any | None = None) -> None:
        self.prefix = group_prefix
        self.records = records
        self.sagemaker = sagemaker or client("sagemaker")

    def _group(self, model_name: str) -> str:
        return f"{self.prefix}{model_name}"

    def _ensure_group(self, model_name: str) -> None:
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=self._group(model_name))
        except self.sagemaker.exceptions.ClientError:
            self.sagemaker.create_model_package_group(
                ModelPackageGroupName=self._group(model_name),
                ModelPackageGroupDescription=f"versions of {model_name}",
            )

    def _packages(self, model_name: str, status: ApprovalStatus | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": self._group(model_name),
            "SortBy": "CreationTime",
            "SortOrder": "Ascending",
        }
        if status is not None:
            kwargs["ModelApprovalStatus"] = status.value
        summaries: list[dict[str, Any]] = []
        try:
            paginator = self.sagemaker.get_paginator("list_model_packages")
            for page in paginator.paginate(**kwargs):
                summaries += page["ModelPackageSummaryList"]
        except self.sagemaker.exceptions.ClientError:
            return []
        return [
            self.sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries
        ]

    def _version(self, model_name: str, package: dict[str, Any]) -> ModelVersion:
        metadata = package.get("CustomerMetadataProperties", {})
        record = json.loads(self.records.get_bytes(metadata[RECORD]))
        return ModelVersion(
            model_name=model_name,
            version=int(package["ModelPackageVersion"]),
            run_key=metadata[RUN_KEY],
            status=ApprovalStatus(package["ModelApprovalStatus"]),
            artifact_uri=record["artifact_uri"],
            metrics=record["metrics"],
            parameters=record["parameters"],
            lineage=record["lineage"],
            created_at=package["CreationTime"]
            if isinstance(package["CreationTime"], datetime)
            else datetime.fromisoformat(str(package["CreationTime"])),
            status_reason=package.get("ApprovalDescription", ""),
        )

    def register(self, candidate: ModelCandidate) -> ModelVersion:
        """A PendingManualApproval package; registering the same run again returns the existing one."""
        for package in self._packages(candidate.model_name):
            if package.get("CustomerMetadataProperties", {}).get(RUN_KEY) == candidate.run_key:
                return self._version(candidate.model_name, package)
        self._ensure_group(candidate.model_name)
        record_key = f"registry/{self._group(candidate.model_name)}/{candidate.run_key}.json"
        record = {
            "artifact_uri": candidate.artifact_uri,
            "metrics": candidate.metrics,
            "parameters": candidate.parameters,
            "lineage": candidate.lineage,
        }
        self.records.put_bytes(record_key, json.dumps(record, sort_keys=True, default=str).encode())
        metadata = {
            RUN_KEY: candidate.run_key,
            RECORD: record_key,
            "mlops:artifact-uri": candidate.artifact_uri,
            "mlops:git-commit": str(candidate.lineage.get("git_commit", "")),
            **{
                f"mlops:snapshot:{table}": str(snap)
                for table, snap in candidate.lineage.get("tables", {}).items()
            },
            **{f"mlops:metric:{name}": f"{value:.6g}" for name, value in candidate.metrics.items()},
        }
        self.sagemaker.create_model_package(
            ModelPackageGroupName=self._group(candidate.model_name),
            ModelPackageDescription=f"run {candidate.run_key}",
            ModelApprovalStatus=ApprovalStatus.PENDING.value,
            # SageMaker refuses empty metadata values.
            CustomerMetadataProperties={k: v[:METADATA_VALUE_LIMIT] for k, v in metadata.items() if v},
        )
        for package in reversed(self._packages(candidate.model_name)):
            if package.get("CustomerMetadataProperties", {}).get(RUN_KEY) == candidate.run_key:
                return self._version(candidate.model_name, package)
        raise RegistryError(f"model package for run {candidate.run_key} not found after creating it")

    def _package(self, model_name: str, version: int) -> dict[str, Any]:
        for package in self._packages(model_name):
            if int(package["ModelPackageVersion"]) == version:
                return package
        raise RegistryError(f"model {model_name!r} has no version {version}")

    def set_status(
        self, model_name: str, version: int, status: ApprovalStatus, reason: str = ""
    ) -> ModelVersion:
        package = self._package(model_name, version)
        if package["ModelApprovalStatus"] != status.value:
            self.sagemaker.update_model_package(
                ModelPackageArn=package["ModelPackageArn"],
                ModelApprovalStatus=status.value,
                ApprovalDescription=reason or status.value,
                # Restated so that an implementation replacing rather than merging metadata keeps it.
                CustomerMetadataProperties=package.get("CustomerMetadataProperties", {}),
            )
        return self.get(model_name, version)

    def get(self, model_name: str, version: int) -> ModelVersion:
        return self._version(model_name, self._package(model_name, version))

    def versions(self, model_name: str | None = None) -> list[ModelVersion]:
        if model_name is None:
            groups = []
            paginator = self.sagemaker.get_paginator("list_model_package_groups")
            for page in paginator.paginate(NameContains=self.prefix):
                groups += [g["ModelPackageGroupName"] for g in page["ModelPackageGroupSummaryList"]]
            names = sorted(g.removeprefix(self.prefix) for g in groups if g.startswith(self.prefix))
        else:
            names = [model_name]
        return [self._version(name, p) for name in names for p in self._packages(name)]

    def champion(self, model_name: str) -> ModelVersion | None:
        approved = self._packages(model_name, ApprovalStatus.APPROVED)
        if not approved:
            return None
        latest = max(approved, key=lambda p: int(p["ModelPackageVersion"]))
        return self._version(model_name, latest)
