"""Local compute: the job entry points run in this process (CUDA if present)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from models.threads import WORKERS_ENV
from pipelines.ports import JobResult
from pipelines.training.launch import LaunchError, run_local
from pipelines.training.run_spec import result_uri_of


class FanoutFailed(RuntimeError):
    """A local fan-out worker process failed."""


def _run_workers(spec_uri: str, workers: int) -> None:
    """N processes of `python -m pipelines.fanout SPEC --claims DIR`, waited for together: each
    takes the next unclaimed child when it is free (`pipelines.fanout.run_claimed`)."""
    environment = {**os.environ, WORKERS_ENV: str(workers)}
    with tempfile.TemporaryDirectory(prefix="mlops-fanout-") as scratch:
        logs = [Path(scratch) / f"worker-{worker}.log" for worker in range(workers)]
        claims = Path(scratch) / "claims"
        claims.mkdir()
        processes = []
        for log_path in logs:
            with log_path.open("w") as log_file:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "pipelines.fanout",
                            spec_uri,
                            "--claims",
                            str(claims),
                        ],
                        env=environment,
                        stdout=subprocess.DEVNULL,
                        stderr=log_file,
                    )
                )
        failures = [
            f"worker {worker}/{workers} exited {code}: {logs[worker].read_text().strip()[-2000:]}"
            for worker, code in enumerate(process.wait() for process in processes)
            if code != 0
        ]
    if failures:
        raise FanoutFailed("local fan-out failed (rerun to resume):\n" + "\n".join(failures))


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
        """Every child of the fan-out: on a GPU, or with one usable CPU, one after the other in this
        process; otherwise in one worker process per usable CPU, each taking the next unclaimed
        child with one torch thread (small children are bound by per-step overhead, not by arithmetic)."""
        import torch

        from models.threads import affinity_cpus, cgroup_cpu_limit, usable_cpus
        from pipelines.fanout import run_child

        workers = min(size, int(usable_cpus(affinity_cpus(), cgroup_cpu_limit())))
        if workers <= 1 or torch.cuda.is_available():
            for index in range(size):
                run_child(spec_uri, index)
        else:
            _run_workers(spec_uri, workers)
        return [
            JobResult(job_id=f"local-array-{uuid.uuid4().hex[:8]}", status="SUCCEEDED", result_uri=spec_uri)
        ]
