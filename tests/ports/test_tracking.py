"""Tracking: MLflow with a SQLite backend locally, SageMaker's managed server by ARN in AWS."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from mlops.contract import AwsTracking, LocalTracking
from pipelines.adapters.factory import tracker

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlops-dev-mlflow"


def test_aws_tracking_points_mlflow_at_the_server_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_MLFLOW_TRACKING_URI", raising=False)
    assert tracker(AwsTracking(tracking_server_arn=ARN), "dev-churn").tracking_uri == ARN  # type: ignore[attr-defined]
    # sagemaker-mlflow registers the arn: scheme, so MLflow builds a SageMaker store for it (no call made yet).
    from mlflow.tracking._tracking_service.utils import _get_store

    assert type(_get_store(ARN)).__name__ == "MlflowSageMakerStore"


def test_emulated_environments_can_redirect_tracking(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    assert tracker(AwsTracking(tracking_server_arn=ARN), "x").tracking_uri.startswith("sqlite:///")  # type: ignore[attr-defined]


def test_local_tracking_logs_params_metrics_and_resumes_a_run(tmp_path: Path) -> None:
    section = LocalTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "artifacts").as_uri()
    )
    track = tracker(section, "local-churn")
    with track.run("run-a") as run_id:
        track.log_params({"lr": 0.1})
        track.log_metrics({"val_auc": 0.7}, step=1)
    with track.run("run-a", run_id=run_id) as resumed:
        track.log_metrics({"val_auc": 0.8}, step=2)
    assert resumed == run_id
    client = mlflow.MlflowClient(section.tracking_uri)
    assert [m.value for m in client.get_metric_history(run_id, "val_auc")] == [0.7, 0.8]
    assert client.get_run(run_id).data.params["lr"] == "0.1"
