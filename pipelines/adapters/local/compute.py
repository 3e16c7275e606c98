"""Local compute: the job entry points run in this process (CUDA if present)."""

from __future__ import annotations

import uuid

from pipelines.ports import JobResult
from pipelines.training.launch import LaunchError, run_local
from pipelines.training.run_spec import result_uri_of


class InProcessCompute:
    """ComputePort that runs `pipelines.training.job` in-process, the same entry point a Batch container runs."""

    def run_training(self, spec_uri: str) -> JobResult:
        """One rank in this process, or several under torchrun when the run spec asks for them."""
        from pipelines.adapters.factory import read_uri
        from pipelines.training.run_spec import TrainingRunSpec

        layout = TrainingRunSpec.model_validate_json(read_uri(spec_uri)).training.distributed
        if layout.nodes > 1:
            raise LaunchError(
                f"training.distributed.nodes is {layout.nodes}: the local environment has one machine "
                "(use processes_per_node for several local ranks)"
            )
        if layout.processes_per_node > 1:
            run_local(spec_uri, layout.processes_per_node)
        else:
            from pipelines.training.job import run_job

            run_job(spec_uri)
        return JobResult(
            job_id=f"local-{uuid.uuid4().hex[:8]}", status="SUCCEEDED", result_uri=result_uri_of(spec_uri)
        )

    def run_array(self, spec_uri: str, size: int, gpu: bool = False) -> list[JobResult]:
        """Every child of the fan-out, one after the other, in this process (on its GPU when it has one)."""
        from pipelines.fanout import run_child

        for index in range(size):
            run_child(spec_uri, index)
        return [
            JobResult(job_id=f"local-array-{uuid.uuid4().hex[:8]}", status="SUCCEEDED", result_uri=spec_uri)
        ]
