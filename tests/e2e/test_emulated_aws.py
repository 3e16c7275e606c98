"""The training flow, unchanged, against an emulated AWS environment (moto's server on 127.0.0.1).

Contract from SSM, lake on S3 with the Glue catalog, validation reports and quarantine on S3,
registry in SageMaker, metrics in CloudWatch, training submitted to AWS Batch. moto does not run
the Batch job's container (no Docker engine here), so once the job is submitted and marked
SUCCEEDED this test runs the container's entry point, `pipelines.training.job`, in-process with the same run
spec. MLflow has no emulated SageMaker server: tracking goes to a temporary SQLite store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.cli import app
from mlops.contract import (
    AwsArtifacts,
    AwsCompute,
    AwsFeatureStore,
    AwsMonitoring,
    AwsRegistry,
    AwsServing,
    AwsTracking,
    Orchestrator,
    PlatformContract,
)
from pipelines.adapters.aws.batch import BatchCompute
from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.lake.ingest import BatchRejected
from pipelines.ports import JobResult
from tests.aws_emulator import aws_client, make_batch_queue, make_bucket, make_lake

pytestmark = [pytest.mark.slow]
PARAMETER = "/mlops/dev/platform-contract"


class EmulatedBatchCompute(BatchCompute):
    """Submits to (emulated) Batch, then does what the job's container would do: run `pipelines.training.job`."""

    def run_training(self, spec_uri: str) -> JobResult:
        from pipelines.training.job import run_job

        job = super().run_training(spec_uri)
        run_job(spec_uri)
        return job

    def run_array(self, spec_uri: str, size: int, gpu: bool = False) -> list[JobResult]:
        """Submits the array job(s), then runs each child's entry point, `pipelines.fanout`, in-process."""
        from pipelines.fanout import run_child

        jobs = super().run_array(spec_uri, size, gpu)
        for index in range(size):
            run_child(spec_uri, index)
        return jobs


@pytest.fixture
def dev_contract(aws: str, kms_key: str) -> PlatformContract:
    for bucket in ("mlops-dev-artifacts", "mlops-dev-quarantine"):
        make_bucket(aws, bucket, kms_key)
    lake = make_lake(aws, kms_key, raw="mlops-dev-raw", curated="mlops-dev-curated")
    make_batch_queue(aws, "mlops-dev-gpu-queue", "mlops-dev-training")
    make_batch_queue(aws, "mlops-dev-cpu-queue", "mlops-dev-fanout")
    contract = PlatformContract(
        environment="dev",
        region="eu-west-1",
        lake=lake.model_copy(update={"quarantine_bucket": "mlops-dev-quarantine"}),
        artifacts=AwsArtifacts(bucket="mlops-dev-artifacts", kms_key_id=kms_key),
        feature_store=AwsFeatureStore(
            offline_namespace="features",
            feature_group_prefix="mlops-dev-",
            online_enabled=False,
            kms_key_id=kms_key,
        ),
        tracking=AwsTracking(
            tracking_server_arn="arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlops-dev-mlflow"
        ),
        registry=AwsRegistry(model_package_group_prefix="mlops-dev-"),
        compute=AwsCompute(
            gpu_job_queue="mlops-dev-gpu-queue",
            cpu_job_queue="mlops-dev-cpu-queue",
            training_job_definition="mlops-dev-training",
            fanout_job_definition="mlops-dev-fanout",
            image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev-training:abc123",
        ),
        monitoring=AwsMonitoring(
            namespace="mlops/dev",
            alarm_names={},
            sns_topic_arn="arn:aws:sns:eu-west-1:123456789012:mlops-dev-alerts",
        ),
        serving=AwsServing(
            endpoint_name="mlops-dev-endpoint",
            execution_role_arn="arn:aws:iam::123456789012:role/mlops-dev-endpoint-execution-role",
            image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev-serving:1",
            data_capture_uri="s3://mlops-dev-curated/data-capture",
            kms_key_id=kms_key,
        ),
        orchestrator=Orchestrator(work_pool="dev-kubernetes"),
    )
    aws_client(aws, "ssm").put_parameter(Name=PARAMETER, Value=contract.to_json(), Type="String")
    return contract


@pytest.fixture
def emulated(
    dev_contract: PlatformContract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> PlatformContract:
    import pipelines.platform as platform_module

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLOPS_MLFLOW_ARTIFACT_ROOT", (tmp_path / "mlflow-artifacts").as_uri())
    monkeypatch.setattr(
        platform_module,
        "_compute",
        lambda contract: EmulatedBatchCompute(
            contract.compute.gpu_job_queue,
            contract.compute.training_job_definition,
            metrics=platform_module._metrics(contract),
            first_poll_seconds=0.01,
            array_queue=contract.compute.cpu_job_queue,
            array_definition=contract.compute.fanout_job_definition,
        ),
    )
    return dev_contract


def _keys(endpoint: str, bucket: str) -> list[str]:
    paginator = aws_client(endpoint, "s3").get_paginator("list_objects_v2")
    return [o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])]


@pytest.mark.usefixtures("prefect_harness")
def test_training_flow_runs_unchanged_against_emulated_aws(
    aws: str, emulated: PlatformContract, small_events: pd.DataFrame, tmp_path: Path, usecase: Any
) -> None:
    from pipelines.flows.training import training_flow

    source = tmp_path / "events.parquet"
    small_events.to_parquet(source, index=False)
    summary = training_flow(env="dev", source=str(source))

    assert summary["status"] == "Approved" and summary["metrics"]["auc"] > 0.7
    assert summary["evaluation_report"].startswith("s3://mlops-dev-artifacts/runs/churn-model/")
    assert summary["validation_report"].startswith("s3://mlops-dev-artifacts/validation/")

    tables = {
        t["Name"] for t in aws_client(aws, "glue").get_tables(DatabaseName="mlops_dev_lake")["TableList"]
    }
    assert tables == {"raw__churn_events", "curated__churn_events", "features__customer_activity"}
    s3 = aws_client(aws, "s3")
    data_file = next(k for k in _keys(aws, "mlops-dev-curated") if k.endswith(".parquet"))
    assert (
        s3.head_object(Bucket="mlops-dev-curated", Key=data_file)["SSEKMSKeyId"] == emulated.lake.kms_key_id
    )  # type: ignore[union-attr]

    jobs = aws_client(aws, "batch").list_jobs(jobQueue="mlops-dev-gpu-queue", jobStatus="SUCCEEDED")[
        "jobSummaryList"
    ]
    assert len(jobs) == 1
    job = aws_client(aws, "batch").describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"][0]
    assert (
        job["parameters"]["spec_uri"]
        == f"s3://mlops-dev-artifacts/runs/churn-model/{summary['run_key']}/run_spec.json"
    )

    sagemaker = aws_client(aws, "sagemaker")
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName="mlops-dev-churn-model")[
        "ModelPackageSummaryList"
    ]
    assert package["ModelApprovalStatus"] == "Approved"
    metadata = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["mlops:run-key"] == summary["run_key"]
    assert "mlops:snapshot:curated.churn_events" in metadata

    metrics = aws_client(aws, "cloudwatch").list_metrics(Namespace="mlops/dev")["Metrics"]
    assert {"evaluation_auc", "gates_passed"} <= {m["MetricName"] for m in metrics}

    _batch_inference_runs_on_the_cpu_queue_and_commits_to_glue(aws, emulated)
    _sweep_runs_its_chunks_as_one_gpu_array_job(aws)

    registered = len(
        sagemaker.list_model_packages(ModelPackageGroupName="mlops-dev-churn-model")[
            "ModelPackageSummaryList"
        ]
    )
    bad = generate_churn_events(
        usecase.dataset, ChurnDataConfig(rows=2_000, seed=3, faults=("out_of_range",))
    )
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    with pytest.raises(BatchRejected, match="session_minutes"):
        training_flow(env="dev", source=str(bad_path))
    assert any(k.endswith("/rejection.json") for k in _keys(aws, "mlops-dev-quarantine"))
    assert (
        len(
            sagemaker.list_model_packages(ModelPackageGroupName="mlops-dev-churn-model")[
                "ModelPackageSummaryList"
            ]
        )
        == registered  # the rejected batch registered nothing
    )
    _live_quality_and_experiments_read_sagemaker_capture_from_s3(aws, small_events)


def _live_quality_and_experiments_read_sagemaker_capture_from_s3(aws: str, events: pd.DataFrame) -> None:
    """Traffic SageMaker captured to S3 (two variants of an experiment) reaches the quality flow and
    the experiment readout through the capture loader, joined to the labels in the Glue lake."""
    from dataclasses import asdict
    from datetime import UTC, datetime, timedelta

    from pipelines.deployment.endpoint import EndpointState, ServingVariant, write_state
    from pipelines.experiments.state import Experiment, experiment_key
    from pipelines.platform import connect
    from pipelines.training.steps import open_environment
    from tests.monitoring.test_sagemaker_capture import capture_record

    platform = open_environment("dev").platform
    # The challenger: the sweep's segmented model (v2), against the training run's v1.
    assert platform.registry.get("churn-model", 2).run_key.count("-sweep-") == 1
    started = datetime.now(UTC) - timedelta(minutes=30)
    # What `experiment start` leaves on AWS once SageMaker serves the split (its calls are pinned
    # against botocore's model in tests/serving/test_sagemaker_experiment.py: moto lacks UpdateEndpoint).
    write_state(
        platform.artifacts,
        EndpointState("churn-model", [ServingVariant("v1", 1, 0.5), ServingVariant("v2", 2, 0.5)], "sticky"),
    )
    experiment = Experiment(
        "churn-model", 1, 2, 0.5, "auc", "higher", 0.02, started.isoformat(timespec="seconds")
    )
    platform.artifacts.put_bytes(experiment_key("churn-model"), json.dumps(asdict(experiment)).encode())

    sample = events.sort_values("event_time").head(400).reset_index(drop=True)
    labels = sample["churned_30d"].to_numpy(float)
    s3, hour = aws_client(aws, "s3"), started.replace(minute=0, second=0, microsecond=0)
    for arm, variant, version, noise in ((0, "AllTraffic", "1", 0.45), (1, "Challenger", "2", 0.2)):
        rows = sample.iloc[arm::2].drop(columns=["churned_30d"])
        scores = [float(min(max(y * (1 - noise) + noise / 2, 0), 1)) for y in labels[arm::2]]
        lines = [
            json.dumps(
                capture_record(
                    rows.iloc[[i]], [scores[i]], started + timedelta(seconds=i), f"{variant}-{i}", version
                )
            )
            for i in range(len(rows))
        ]
        s3.put_object(
            Bucket="mlops-dev-curated",
            Key=f"data-capture/mlops-dev-endpoint/{variant}/{hour:%Y/%m/%d/%H}/capture-{variant}.jsonl",
            Body="\n".join(lines).encode(),
        )

    status = CliRunner().invoke(app, ["experiment", "status", "--env", "dev"])
    assert status.exit_code == 0, status.output
    assert "v1: 200 labelled rows" in status.output and "v2: 200 labelled rows" in status.output
    assert "report: s3://mlops-dev-artifacts/experiments/churn-model/" in status.output

    quality = CliRunner().invoke(app, ["quality", "--env", "dev", "--no-retrain"])
    assert quality.exit_code == 0, quality.output
    assert "report: s3://mlops-dev-artifacts/monitoring/churn-model/" in quality.output
    loaded = connect(platform.contract).lake.read("capture.churn_model", columns=["variant", "capture_file"])
    assert loaded.num_rows == 400  # the second look loaded nothing again
    assert sorted(set(loaded.column("variant").to_pylist())) == ["v1", "v2"]


def _sweep_runs_its_chunks_as_one_gpu_array_job(aws: str) -> None:
    from pipelines.deployment.steps import handler_for
    from pipelines.flows.deployment import deployment_flow
    from pipelines.flows.sweep import sweep_flow
    from pipelines.ports import ApprovalStatus
    from pipelines.training.steps import open_environment

    summary = sweep_flow(env="dev", trials=1)
    assert summary["segments"] >= 2 and summary["trials"] == summary["segments"]
    assert summary["report"].startswith("s3://mlops-dev-artifacts/sweeps/churn-model/")
    batch = aws_client(aws, "batch")
    on_gpu = batch.list_jobs(jobQueue="mlops-dev-gpu-queue", jobStatus="SUCCEEDED")["jobSummaryList"]
    described = batch.describe_jobs(jobs=[j["jobId"] for j in on_gpu if j["jobName"].startswith("fanout")])
    (submitted,) = [j for j in described["jobs"] if "size" in j.get("arrayProperties", {})]  # one array job
    assert submitted["jobDefinition"].split("/")[-1].startswith("mlops-dev-training")
    assert submitted["arrayProperties"]["size"] == summary["chunks"]
    chunks = [k for k in _keys(aws, "mlops-dev-artifacts") if f"/{summary['sweep_key']}/chunks/" in k]
    assert len([k for k in chunks if k.endswith(".json")]) == summary["chunks"]  # each chunk's results
    assert len([k for k in chunks if k.endswith(".best.pt")]) == summary["chunks"]  # and its best weights
    glue = aws_client(aws, "glue").get_table(DatabaseName="mlops_dev_lake", Name="sweeps__churn_model")
    assert glue["Table"]["Name"] == "sweeps__churn_model"
    # The segmented model (each segment's winner, the global model for the rest) is in SageMaker's registry.
    assert summary["registered"].startswith("churn-model v2 (segmented): ")
    sagemaker = aws_client(aws, "sagemaker")
    packages = sagemaker.list_model_packages(ModelPackageGroupName="mlops-dev-churn-model")[
        "ModelPackageSummaryList"
    ]
    segmented = sagemaker.describe_model_package(
        ModelPackageName=next(p["ModelPackageArn"] for p in packages if p["ModelPackageVersion"] == 2)
    )
    assert "-sweep-" in segmented["CustomerMetadataProperties"]["mlops:run-key"]
    # Gated like any run, here against the training run's v1 on the same test rows: with one trial
    # per segment it may fall short. A reviewer's approval then lets the deployment be exercised.
    status = summary["registered"].removeprefix("churn-model v2 (segmented): ")
    assert status in ("Approved", "Rejected"), summary["registered"]
    if status == "Rejected":
        assert summary["registration_note"].startswith("failed gates: ")
        open_environment("dev").platform.registry.set_status(
            "churn-model", 2, ApprovalStatus.APPROVED, "approved by review to exercise the deployment"
        )

    # Deployed to the SageMaker endpoint through the guarded deployment (its smoke test replays the
    # segmented answers), then served from the registered files as the container serves them.
    assert deployment_flow(env="dev", version=2)["decision"] == "promoted"
    endpoint = sagemaker.describe_endpoint(EndpointName="mlops-dev-endpoint")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Environment"]["MLOPS_MODEL_VERSION"] == "2"
    ctx = open_environment("dev")
    handler = handler_for(ctx, ctx.platform.registry.get("churn-model", 2))
    smoke = json.loads(
        ctx.platform.artifacts.get_bytes(
            f"runs/churn-model/{segmented['CustomerMetadataProperties']['mlops:run-key']}/smoke.json"
        )
    )
    _, scores = handler.predict(json.dumps(smoke["rows"]).encode(), "application/json")
    assert scores == pytest.approx(smoke["expected"], abs=1e-6)


def _batch_inference_runs_on_the_cpu_queue_and_commits_to_glue(aws: str, contract: PlatformContract) -> None:
    from pipelines.flows.batch_inference import batch_inference_flow

    result = batch_inference_flow(env="dev")
    assert result["written"] and result["rows"] == 20_000
    assert result["output_table"] == "predictions.churn_model"
    glue = aws_client(aws, "glue").get_table(DatabaseName="mlops_dev_lake", Name="predictions__churn_model")
    assert glue["Table"]["StorageDescriptor"]["Location"].startswith(
        "s3://mlops-dev-curated/iceberg/predictions/"
    )
    s3 = aws_client(aws, "s3")
    data = [
        k
        for k in _keys(aws, "mlops-dev-curated")
        if k.startswith("iceberg/predictions/") and k.endswith(".parquet")
    ]
    assert data and all(
        s3.head_object(Bucket="mlops-dev-curated", Key=k)["SSEKMSKeyId"] == contract.lake.kms_key_id  # type: ignore[union-attr]
        for k in data
    )
    batch = aws_client(aws, "batch")
    (job,) = batch.list_jobs(jobQueue="mlops-dev-cpu-queue", jobStatus="SUCCEEDED")["jobSummaryList"]
    submitted = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert submitted["jobDefinition"].split("/")[-1].startswith("mlops-dev-fanout")
    assert submitted["parameters"]["spec_uri"].startswith(
        "s3://mlops-dev-artifacts/batch-inference/churn-model/"
    )
    again = batch_inference_flow(env="dev")
    assert not again["written"] and again["snapshot_id"] == result["snapshot_id"]
    assert len(batch.list_jobs(jobQueue="mlops-dev-cpu-queue", jobStatus="SUCCEEDED")["jobSummaryList"]) == 1


def test_env_show_reads_the_contract_from_ssm_and_names_a_missing_parameter(
    aws: str, dev_contract: PlatformContract
) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["env", "show", "--env", "dev"])
    assert shown.exit_code == 0, shown.output
    assert '"glue_database": "mlops_dev_lake"' in shown.output
    aws_client(aws, "ssm").delete_parameter(Name=PARAMETER)
    missing = runner.invoke(app, ["env", "show", "--env", "dev"])
    assert missing.exit_code == 1
    assert missing.output.strip().count("\n") == 0 and PARAMETER in missing.output


def test_no_credentials_is_one_clear_line(tmp_path: Path) -> None:
    """A fresh process (boto3 caches credentials per process) with no credentials anywhere."""
    import os
    import subprocess
    import sys

    hidden = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "MLOPS_AWS_ENDPOINT_URL",
    )
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    script = Path(sys.executable).parent / "mlops"
    result = subprocess.run(
        [str(script), "env", "show", "--env", "dev"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot read SSM parameter {PARAMETER}: no AWS credentials found"
