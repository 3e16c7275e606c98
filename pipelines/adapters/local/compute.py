"""Local compute: the training job's entry point run in this process (CUDA if present)."""

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
