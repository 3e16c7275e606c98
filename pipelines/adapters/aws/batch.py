"""Compute on AWS Batch: the training job runs on the GPU queue with its run spec passed by URI.

Waiting backs off exponentially. A job that failed because its spot instance was reclaimed is
submitted again (the job definition's own retry strategy covers most reclaims; this covers the
attempts it exhausts); any other failure raises with the job's status reason, exit code and log
stream, and is counted in the `batch_job_failures` metric that the platform alarms on.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from typing import Any

from pipelines.adapters.aws.session import client
from pipelines.ports import JobResult, MetricDatum, MetricsPort
from pipelines.training.run_spec import result_uri_of

SPOT_RECLAIM_REASONS = ("Host EC2*terminated*", "*Spot*interrupt*", "*SpotInstance*")
TERMINAL = {"SUCCEEDED", "FAILED"}


class TrainingJobFailed(Exception):
    """The Batch job failed; the message carries its status reason, exit code and log stream."""


def is_spot_reclaim(reason: str) -> bool:
    return any(fnmatch.fnmatch(reason, pattern) for pattern in SPOT_RECLAIM_REASONS)


class BatchCompute:
    """ComputePort on AWS Batch."""

    def __init__(
        self,
        job_queue: str,
        job_definition: str,
        batch: Any | None = None,
        metrics: MetricsPort | None = None,
        spot_resubmits: int = 2,
        array_queue: str | None = None,
        first_poll_seconds: float = 2.0,
        max_poll_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        distributed_queue: str | None = None,
        distributed_definition: str | None = None,
        read_layout: Callable[[str], tuple[int, int]] | None = None,
        array_definition: str | None = None,
    ) -> None:
        self.job_queue = job_queue
        self.job_definition = job_definition
        self.batch = batch or client("batch")
        self.metrics = metrics
        self.spot_resubmits = spot_resubmits
        self.array_queue = array_queue
        self.array_definition = array_definition  # a CPU definition for the CPU queue, if provisioned
        self.first_poll, self.max_poll = first_poll_seconds, max_poll_seconds
        self.sleep = sleep
        self.distributed_queue, self.distributed_definition = distributed_queue, distributed_definition
        self.read_layout = read_layout or _layout_of

    def _submit(self, spec_uri: str, attempt: int) -> str:
        run = spec_uri.rstrip("/").rsplit("/", 2)[-2][:60]
        request: dict[str, Any] = {
            "jobName": f"train-{run}-{attempt}".replace(".", "-"),
            "jobQueue": self.job_queue,
            "jobDefinition": self.job_definition,
            "parameters": {"spec_uri": spec_uri},
        }
        nodes, per_node = self.read_layout(spec_uri)
        if nodes > 1:
            if not (self.distributed_queue and self.distributed_definition):
                raise TrainingJobFailed(
                    f"the run asks for {nodes} nodes but this environment has no multi-node training: "
                    "set compute.distributed in its stack config and run pulumi up"
                )
            ranks = [{"name": "MLOPS_PROCESSES_PER_NODE", "value": str(per_node)}]
            request.update(
                jobQueue=self.distributed_queue,
                jobDefinition=self.distributed_definition,
                nodeOverrides={
                    "numNodes": nodes,
                    "nodePropertyOverrides": [
                        {"targetNodes": "0:", "containerOverrides": {"environment": ranks}}
                    ],
                },
            )
        elif per_node > 1:  # several GPUs of one machine: torchrun on the single node
            request["containerOverrides"] = {
                "command": ["python", "-m", "pipelines.training.launch", "Ref::spec_uri"],
                "environment": [{"name": "MLOPS_PROCESSES_PER_NODE", "value": str(per_node)}],
                "resourceRequirements": [{"type": "GPU", "value": str(per_node)}],
            }
        response = self.batch.submit_job(**request)
        return str(response["jobId"])

    def _wait(self, job_id: str) -> dict[str, Any]:
        delay = self.first_poll
        while True:
            job: dict[str, Any] = self.batch.describe_jobs(jobs=[job_id])["jobs"][0]
            if job["status"] in TERMINAL:
                return job
            self.sleep(delay)
            delay = min(delay * 1.5, self.max_poll)

    def run_training(self, spec_uri: str) -> JobResult:
        for attempt in range(self.spot_resubmits + 1):
            job_id = self._submit(spec_uri, attempt)
            job = self._wait(job_id)
            if job["status"] == "SUCCEEDED":
                return JobResult(job_id, "SUCCEEDED", result_uri_of(spec_uri))
            reason = job.get("statusReason", "")
            if not (is_spot_reclaim(reason) and attempt < self.spot_resubmits):
                break
        self._count_failure()
        raise TrainingJobFailed(_describe_failure(job_id, job))

    def run_array(self, spec_uri: str, size: int, gpu: bool = False) -> list[JobResult]:
        """The fan-out as array jobs of at most 10,000 children each: on the GPU queue with the training
        job definition when asked, else on the CPU queue with the fan-out job definition when the
        environment has them (the GPU queue and training definition otherwise)."""
        from pipelines.fanout import chunks

        jobs = []
        for offset, count in chunks(size):
            request: dict[str, Any] = {
                "jobName": f"fanout-{offset}",
                "jobQueue": self.job_queue if gpu else self.array_queue or self.job_queue,
                "jobDefinition": self.job_definition if gpu else self.array_definition or self.job_definition,
                "parameters": {"spec_uri": spec_uri, "offset": str(offset)},
                "containerOverrides": {
                    "command": ["python", "-m", "pipelines.fanout", "Ref::spec_uri", "Ref::offset"]
                },
            }
            if count > 1:  # Batch arrays have at least 2 children
                request["arrayProperties"] = {"size": count}
            jobs.append(str(self.batch.submit_job(**request)["jobId"]))
        results = []
        for job_id in jobs:
            job = self._wait(job_id)
            if job["status"] != "SUCCEEDED":
                self._count_failure()
                raise TrainingJobFailed(_describe_failure(job_id, job))
            results.append(JobResult(job_id, "SUCCEEDED", spec_uri))
        return results

    def _count_failure(self) -> None:
        if self.metrics is not None:
            self.metrics.put([MetricDatum("batch_job_failures", 1.0, {"queue": self.job_queue}, "Count")])


def _layout_of(spec_uri: str) -> tuple[int, int]:
    """(nodes, processes per node) the run spec asks for."""
    from pipelines.adapters.factory import read_uri
    from pipelines.training.run_spec import TrainingRunSpec

    layout = TrainingRunSpec.model_validate_json(read_uri(spec_uri)).training.distributed
    return layout.nodes, layout.processes_per_node


def _describe_failure(job_id: str, job: dict[str, Any]) -> str:
    attempts = job.get("attempts") or [{}]
    container = {**job.get("container", {}), **attempts[-1].get("container", {})}
    parts = [f"training job {job_id} failed: {job.get('statusReason') or 'no status reason'}"]
    if container.get("exitCode") is not None:
        parts.append(f"exit code {container['exitCode']}")
    if container.get("reason"):
        parts.append(f"container: {container['reason']}")
    if container.get("logStreamName"):
        parts.append(f"logs: {container['logStreamName']}")
    return "; ".join(parts)
