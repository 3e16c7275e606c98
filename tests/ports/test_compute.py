"""The compute port: local runs the job in-process; Batch submits it (moto) and handles failures (Stubber)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipelines.adapters.aws.batch import BatchCompute, TrainingJobFailed, is_spot_reclaim
from pipelines.adapters.local.metrics import SqliteMetrics
from pipelines.training.run_spec import result_uri_of
from tests.aws_emulator import make_batch_queue

from .conftest import aws_client

SPEC = "s3://artifacts/runs/churn-model/abc123/run_spec.json"


def _one_node(*args: Any, **kwargs: Any) -> BatchCompute:
    """The adapter with the run spec's layout given (these tests' spec URIs are not real files)."""
    return BatchCompute(*args, read_layout=lambda _: (1, 1), **kwargs)


@pytest.fixture
def batch_queue(aws: str) -> tuple[str, str]:
    return make_batch_queue(aws, "gpu-queue", "training")


def test_batch_job_is_submitted_with_the_spec_uri_and_waited_for(
    aws: str, batch_queue: tuple[str, str]
) -> None:
    result = _one_node(*batch_queue, first_poll_seconds=0.01).run_training(SPEC)
    assert (
        result.status == "SUCCEEDED"
        and result.result_uri == "s3://artifacts/runs/churn-model/abc123/result.json"
    )
    job = aws_client(aws, "batch").describe_jobs(jobs=[result.job_id])["jobs"][0]
    assert job["parameters"] == {"spec_uri": SPEC}
    assert job["jobQueue"].endswith("gpu-queue")


def _stubbed(responses: list[tuple[str, dict[str, Any]]]) -> tuple[Any, Stubber]:
    batch = boto3.client("batch", region_name="eu-west-1")
    stubber = Stubber(batch)
    for operation, response in responses:
        stubber.add_response(operation, response)
    stubber.activate()
    return batch, stubber


def _job(job_id: str, status: str, status_reason: str = "", **container: Any) -> dict[str, Any]:
    job = {
        "jobName": "train",
        "jobId": job_id,
        "jobQueue": "q",
        "status": status,
        "startedAt": 1,
        "jobDefinition": "training",
    }
    if status_reason:
        job["statusReason"] = status_reason
    if container:
        job["attempts"] = [{"container": container}]
    return {"jobs": [job]}


def test_spot_reclaim_is_resubmitted_and_application_errors_are_not() -> None:
    reclaimed = "Host EC2 (instance i-0abc) terminated."
    batch, stubber = _stubbed(
        [
            ("submit_job", {"jobName": "train", "jobId": "j1"}),
            ("describe_jobs", _job("j1", "RUNNING")),
            ("describe_jobs", _job("j1", "FAILED", reclaimed)),
            ("submit_job", {"jobName": "train", "jobId": "j2"}),
            ("describe_jobs", _job("j2", "SUCCEEDED")),
        ]
    )
    waits: list[float] = []
    result = _one_node("q", "training", batch=batch, sleep=waits.append).run_training(SPEC)
    assert result.job_id == "j2" and waits == [2.0]
    stubber.assert_no_pending_responses()


def test_application_failure_surfaces_reason_exit_code_and_log_stream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    batch, _ = _stubbed(
        [
            ("submit_job", {"jobName": "train", "jobId": "j1"}),
            (
                "describe_jobs",
                _job(
                    "j1",
                    "FAILED",
                    "Essential container in task exited",
                    exitCode=1,
                    logStreamName="training/default/abc",
                    reason="OutOfMemoryError",
                ),
            ),
        ]
    )
    metrics = SqliteMetrics(tmp_path / "m.db", "mlops/dev")
    with pytest.raises(TrainingJobFailed) as failure:
        _one_node("q", "training", batch=batch, metrics=metrics, sleep=lambda _: None).run_training(SPEC)
    message = str(failure.value)
    assert "Essential container in task exited" in message and "exit code 1" in message
    assert "logs: training/default/abc" in message and "OutOfMemoryError" in message
    assert [d.value for d in metrics.query("batch_job_failures")] == [1.0]


def test_repeated_spot_reclaims_give_up_after_the_resubmits() -> None:
    reclaimed = "Host EC2 (instance i-1) terminated."
    steps: list[tuple[str, dict[str, Any]]] = []
    for n in range(3):
        steps += [
            ("submit_job", {"jobName": "train", "jobId": f"j{n}"}),
            ("describe_jobs", _job(f"j{n}", "FAILED", reclaimed)),
        ]
    batch, stubber = _stubbed(steps)
    with pytest.raises(TrainingJobFailed, match="terminated"):
        _one_node("q", "training", batch=batch, spot_resubmits=2, sleep=lambda _: None).run_training(SPEC)
    stubber.assert_no_pending_responses()


def test_backoff_grows_to_its_cap() -> None:
    steps = (
        [("submit_job", {"jobName": "train", "jobId": "j"})]
        + [("describe_jobs", _job("j", "RUNNING"))] * 6
        + [("describe_jobs", _job("j", "SUCCEEDED"))]
    )
    batch, _ = _stubbed(steps)
    waits: list[float] = []
    _one_node(
        "q", "training", batch=batch, first_poll_seconds=10, max_poll_seconds=30, sleep=waits.append
    ).run_training(SPEC)
    assert waits == [10, 15, 22.5, 30, 30, 30]


def test_reclaim_patterns_and_result_location() -> None:
    assert is_spot_reclaim("Host EC2 (instance i-0123) terminated.")
    assert not is_spot_reclaim("Essential container in task exited")
    assert result_uri_of("file:///x/runs/m/k/run_spec.json") == "file:///x/runs/m/k/result.json"


def test_local_compute_runs_the_job_entry_point(platform, small_events, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipelines.adapters.factory import file_uri_to_path
    from pipelines.training import steps

    source = tmp_path / "events.parquet"
    small_events.to_parquet(source, index=False)
    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, source)
    prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
    result = platform.compute.run_training(prepared.spec_uri)
    assert result.status == "SUCCEEDED" and result.result_uri == result_uri_of(prepared.spec_uri)
    assert file_uri_to_path(result.result_uri).exists()


def record_index(index: int, payload: dict[str, Any]) -> None:
    """A fan-out handler for the tests: leaves one file per child."""
    (Path(payload["out"]) / f"{index}.done").write_text(str(index))


def _fanout_spec(tmp_path: Path, size: int) -> str:
    from pipelines.fanout import FanoutSpec

    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    spec = tmp_path / "fanout.json"
    spec.write_text(
        FanoutSpec(
            handler="tests.ports.test_compute:record_index", size=size, payload={"out": str(out)}
        ).model_dump_json()
    )
    return spec.as_uri()


def test_local_fanout_runs_every_child(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform.compute.run_array(_fanout_spec(tmp_path, 25), 25)
    assert sorted(int(p.stem) for p in (tmp_path / "out").glob("*.done")) == list(range(25))


def test_fanout_child_uses_the_array_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.fanout import main

    uri = _fanout_spec(tmp_path, 20_005)
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "4")
    assert main([uri, "20000"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["20004.done"]
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "5")
    with pytest.raises(IndexError, match="outside"):
        main([uri, "20000"])


def test_batch_fanout_splits_into_array_jobs_of_at_most_10000(aws: str, batch_queue: tuple[str, str]) -> None:
    results = _one_node(*batch_queue, first_poll_seconds=0.01).run_array(
        "s3://artifacts/fanout/spec.json", 30_001
    )
    assert len(results) == 4
    jobs = aws_client(aws, "batch").describe_jobs(jobs=[r.job_id for r in results])["jobs"]
    described = sorted(
        (int(j["parameters"]["offset"]), j.get("arrayProperties", {}).get("size", 1)) for j in jobs
    )
    assert described == [(0, 10_000), (10_000, 10_000), (20_000, 10_000), (30_000, 1)]


def _submitted(layout: tuple[int, int], **adapter: Any) -> dict[str, Any]:
    """The SubmitJob request the adapter sends for a run of `layout` (validated against Batch's model)."""
    batch = boto3.client("batch", region_name="eu-west-1")
    stubber = Stubber(batch)
    sent: dict[str, Any] = {}
    batch.meta.events.register(
        "provide-client-params.batch.SubmitJob", lambda params, **_: sent.update(params)
    )
    stubber.add_response("submit_job", {"jobName": "train", "jobId": "j1"})
    stubber.add_response("describe_jobs", _job("j1", "SUCCEEDED"))
    with stubber:
        BatchCompute("gpu-q", "training", batch=batch, read_layout=lambda _: layout, **adapter).run_training(
            SPEC
        )
    return sent


def test_a_multi_node_run_is_submitted_as_a_multi_node_parallel_job() -> None:
    sent = _submitted((4, 8), distributed_queue="dist-q", distributed_definition="training-distributed")
    assert sent["jobQueue"] == "dist-q" and sent["jobDefinition"] == "training-distributed"
    assert sent["nodeOverrides"]["numNodes"] == 4
    override = sent["nodeOverrides"]["nodePropertyOverrides"][0]
    assert override["targetNodes"] == "0:"
    assert {"name": "MLOPS_PROCESSES_PER_NODE", "value": "8"} in override["containerOverrides"]["environment"]


def test_several_gpus_of_one_machine_run_torchrun_on_the_single_node_definition() -> None:
    sent = _submitted((1, 4))
    assert sent["jobDefinition"] == "training" and "nodeOverrides" not in sent
    assert sent["containerOverrides"]["command"][:3] == ["python", "-m", "pipelines.training.launch"]
    assert {"type": "GPU", "value": "4"} in sent["containerOverrides"]["resourceRequirements"]
    assert "containerOverrides" not in _submitted((1, 1))


def test_a_multi_node_run_without_multi_node_compute_says_what_to_configure() -> None:
    batch = boto3.client("batch", region_name="eu-west-1")
    with pytest.raises(TrainingJobFailed, match=r"no multi-node training: set compute\.distributed"):
        BatchCompute("q", "training", batch=batch, read_layout=lambda _: (2, 1)).run_training(SPEC)


def fail_on_seven(index: int, payload: dict[str, Any]) -> None:
    """A fan-out handler for the tests: child 7 fails, the others leave their file."""
    if index == 7:
        raise RuntimeError("child 7 broke")
    record_index(index, payload)


def test_a_failed_local_child_names_itself_and_the_others_finish(
    platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from pipelines.adapters.local import compute as local_compute
    from pipelines.fanout import FanoutSpec

    monkeypatch.setattr("models.threads.usable_cpus", lambda *_: 2.0)  # two workers on any machine
    out = tmp_path / "out"
    out.mkdir()
    spec = tmp_path / "fanout.json"
    spec.write_text(
        FanoutSpec(
            handler="tests.ports.test_compute:fail_on_seven", size=10, payload={"out": str(out)}
        ).model_dump_json()
    )
    with pytest.raises(local_compute.FanoutFailed, match="child 7 broke"):
        platform.compute.run_array(spec.as_uri(), 10)
    done = sorted(int(p.stem) for p in out.glob("*.done"))
    assert done == [0, 1, 2, 3, 4, 5, 6, 8, 9]  # the other worker claimed every child left


def test_a_gpu_fanout_goes_to_the_gpu_queue_with_the_training_definition() -> None:
    batch = boto3.client("batch", region_name="eu-west-1")
    sent: dict[str, Any] = {}
    batch.meta.events.register(
        "provide-client-params.batch.SubmitJob", lambda params, **_: sent.update(params)
    )
    stubber = Stubber(batch)
    stubber.add_response("submit_job", {"jobName": "fanout-0", "jobId": "j1"})
    stubber.add_response("describe_jobs", _job("j1", "SUCCEEDED"))
    with stubber:
        BatchCompute(
            "gpu-q",
            "training",
            batch=batch,
            array_queue="cpu-q",
            array_definition="fanout",
            first_poll_seconds=0.0,
        ).run_array(SPEC, 200, gpu=True)
    assert (sent["jobQueue"], sent["jobDefinition"]) == ("gpu-q", "training")
    assert sent["arrayProperties"] == {"size": 200}
