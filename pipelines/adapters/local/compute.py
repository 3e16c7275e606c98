"""Local compute: the job entry points run in this process (CUDA if present)."""

from __future__ import annotations

import uuid

from models.run_spec import result_uri_of
from pipelines.ports import JobResult


class InProcessCompute:
    """ComputePort that runs `models.job` in-process, the same entry point a Batch container runs."""

    def run_training(self, spec_uri: str) -> JobResult:
        from models.job import run_job

        run_job(spec_uri)
        return JobResult(
            job_id=f"local-{uuid.uuid4().hex[:8]}", status="SUCCEEDED", result_uri=result_uri_of(spec_uri)
        )

    def run_array(self, spec_uri: str, size: int) -> list[JobResult]:
        """Every child of the fan-out, one after the other, in this process."""
        from pipelines.fanout import run_child

        for index in range(size):
            run_child(spec_uri, index)
        return [
            JobResult(job_id=f"local-array-{uuid.uuid4().hex[:8]}", status="SUCCEEDED", result_uri=spec_uri)
        ]
