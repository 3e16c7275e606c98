"""SageMaker's data capture files (S3, moto) loaded into the lake's capture table: the same rows the
local endpoint captures, each file once however often the sync runs or dies, late files picked up,
records that cannot be read counted and named."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from pipelines.adapters.aws.capture import CAPTURE_FILE, SageMakerCaptureLoader
from pipelines.adapters.iceberg_lake import IcebergLake
from pipelines.monitoring.captured import capture_schema
from pipelines.serving.capture import capture_table
from pipelines.serving.handler import response_body
from tests.aws_emulator import aws_client, make_bucket
from tests.serving.test_sagemaker_deploy import SERVING

MODEL = "churn-model"
HOUR = datetime(2026, 11, 30, 10, tzinfo=UTC)


def capture_record(
    rows: pd.DataFrame,
    scores: list[float],
    at: datetime,
    event_id: str,
    version: str = "",
    csv_in: bool = False,
    csv_out: bool = False,
    base64_in: bool = False,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One request and its answer as SageMaker's data capture records them."""
    if csv_in:
        request, request_type = rows.to_csv(index=False).encode(), "text/csv"
    else:
        request = json.dumps(
            {"instances": json.loads(rows.to_json(orient="records", date_format="iso"))}
        ).encode()
        request_type = "application/json"
    answer, answer_type = response_body(
        scores, "text/csv" if csv_out else "application/json", "churn_probability", None, None, version
    )
    request_encoding = "BASE64" if base64_in else ("CSV" if csv_in else "JSON")
    metadata = {"eventId": event_id, "inferenceTime": at.isoformat().replace("+00:00", "Z")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": request_type,
                "mode": "INPUT",
                "data": base64.b64encode(request).decode() if base64_in else request.decode(),
                "encoding": request_encoding,
            },
            "endpointOutput": {
                "observedContentType": answer_type,
                "mode": "OUTPUT",
                "data": answer.decode(),
                "encoding": "CSV" if csv_out else "JSON",
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def put_capture_file(s3: Any, variant: str, hour: datetime, name: str, lines: list[str]) -> str:
    key = f"data-capture/{SERVING.endpoint_name}/{variant}/{hour:%Y/%m/%d/%H}/{name}.jsonl"
    s3.put_object(Bucket="mlops-dev-curated", Key=key, Body="\n".join(lines).encode())
    return key


@pytest.fixture
def lake(tmp_path: Path) -> IcebergLake:
    (tmp_path / "warehouse").mkdir()
    return IcebergLake(
        SqlCatalog(
            "t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
        )
    )


@pytest.fixture
def endpoint(aws: str) -> Any:
    """The capture bucket, and an endpoint whose AllTraffic variant serves v1 (for CSV answers)."""
    make_bucket(aws, "mlops-dev-curated")
    sagemaker = aws_client(aws, "sagemaker")
    sagemaker.create_model(
        ModelName="m-v1",
        ExecutionRoleArn=SERVING.execution_role_arn,
        PrimaryContainer={"Image": SERVING.image_uri, "Environment": {"MLOPS_MODEL_VERSION": "1"}},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="m-v1-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=SERVING.endpoint_name, EndpointConfigName="m-v1-config")
    return aws_client(aws, "s3")


@pytest.fixture
def requests(trained: tuple[Any, pd.DataFrame]) -> pd.DataFrame:
    _, test = trained
    return test[["customer_id", "event_time", *trained[0].feature_names]].head(40).reset_index(drop=True)


def test_capture_files_become_the_rows_the_local_endpoint_captures(
    endpoint: Any, lake: IcebergLake, requests: pd.DataFrame, usecase: Any
) -> None:
    s3, first, second = endpoint, requests.head(3), requests.iloc[3:5]
    with_extra = first.assign(coupon="X")  # a field the model does not take: counted, not kept
    keys = [
        put_capture_file(
            s3,
            "AllTraffic",
            HOUR,
            "10-01-00-000-a",
            [
                json.dumps(
                    capture_record(with_extra, [0.1, 0.2, 0.3], HOUR + timedelta(minutes=1), "e1", "1")
                ),
                json.dumps(
                    capture_record(
                        second,
                        [0.4, 0.5],
                        HOUR + timedelta(minutes=2),
                        "e2",
                        csv_in=True,
                        csv_out=True,
                        base64_in=True,
                    )
                ),
            ],
        ),
        put_capture_file(
            s3,
            "Challenger",
            HOUR,
            "10-03-00-000-b",
            [
                json.dumps(
                    capture_record(
                        first, [0.7, 0.8, 0.9], HOUR + timedelta(minutes=3), "e3", "2", inference_id="req-9"
                    )
                )
            ],
        ),
    ]
    loader = SageMakerCaptureLoader(
        SERVING, lake, s3=s3, sagemaker=aws_client(s3.meta.endpoint_url, "sagemaker")
    )
    synced = loader.sync(MODEL, capture_schema(usecase))
    assert (synced.files, synced.rows, synced.rejected) == (2, 8, 0)

    rows = lake.read(capture_table(MODEL)).to_pandas().sort_values(["captured_at", "inference_id"])
    assert (
        rows["variant"].tolist() == ["v1"] * 5 + ["v2"] * 3
    )  # the CSV answer's version came from the endpoint
    assert rows["model_version"].tolist() == ["1"] * 5 + ["2"] * 3
    assert rows["inference_id"].tolist() == [
        *(f"e1-{i}" for i in range(3)),
        "e2-0",
        "e2-1",
        "req-9-0",
        "req-9-1",
        "req-9-2",
    ]
    assert rows["prediction"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9])
    assert rows["extra_fields"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert set(rows[CAPTURE_FILE]) == set(keys)
    expected = pd.concat([first, second, first], ignore_index=True)
    assert rows["customer_id"].tolist() == expected["customer_id"].astype(str).tolist()
    for name in usecase.numeric_features():
        assert rows[name].to_numpy() == pytest.approx(expected[name].to_numpy(float), nan_ok=True)
    for name in usecase.categorical_features():
        assert rows[name].tolist() == expected[name].astype(str).tolist()
    # The event time each prediction is about is the request's, not the moment it was captured.
    assert (
        rows["event_time"].to_numpy() == pd.to_datetime(expected["event_time"], utc=True).to_numpy()
    ).all()
    assert "coupon" not in rows.columns


def test_each_file_is_loaded_once_late_files_are_picked_up_and_a_killed_sync_is_finished(
    endpoint: Any, lake: IcebergLake, requests: pd.DataFrame, usecase: Any
) -> None:
    s3, schema = endpoint, capture_schema(usecase)
    for hour, name in ((HOUR, "a"), (HOUR + timedelta(hours=1), "b"), (HOUR + timedelta(hours=2), "c")):
        put_capture_file(
            s3,
            "AllTraffic",
            hour,
            name,
            [json.dumps(capture_record(requests.head(2), [0.1, 0.2], hour, f"id-{name}", "1"))],
        )

    class DiesOnSecondCommit:
        """The lake, failing the second commit as a killed process would leave it."""

        def __init__(self, inner: IcebergLake) -> None:
            self.inner, self.commits = inner, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def append(self, *args: Any) -> Any:
            self.commits += 1
            if self.commits == 2:
                raise RuntimeError("killed")
            return self.inner.append(*args)

    sagemaker = aws_client(s3.meta.endpoint_url, "sagemaker")
    dying = SageMakerCaptureLoader(
        SERVING, DiesOnSecondCommit(lake), s3=s3, sagemaker=sagemaker, files_per_commit=1
    )  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="killed"):
        dying.sync(MODEL, schema)
    table = capture_table(MODEL)
    assert lake.read(table).num_rows == 2  # the oldest hour's file landed, nothing else

    loader = SageMakerCaptureLoader(SERVING, lake, s3=s3, sagemaker=sagemaker)
    finished = loader.sync(MODEL, schema)
    assert (finished.files, finished.rows, finished.skipped_files) == (2, 4, 1)
    again = loader.sync(MODEL, schema)
    assert (again.files, again.rows, again.skipped_files) == (0, 0, 3)
    snapshots = len(lake.snapshots(table))

    # An instance uploads a file for an hour already loaded: it is found, and only it is loaded.
    put_capture_file(
        s3,
        "AllTraffic",
        HOUR + timedelta(hours=1),
        "late",
        [json.dumps(capture_record(requests.head(1), [0.5], HOUR + timedelta(hours=1), "id-late", "1"))],
    )
    late = loader.sync(MODEL, schema)
    assert (late.files, late.rows) == (1, 1)
    assert len(lake.snapshots(table)) == snapshots + 1
    ids = lake.read(table, columns=["inference_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids)) == 7


def test_records_that_cannot_be_read_are_counted_and_named(
    endpoint: Any, lake: IcebergLake, requests: pd.DataFrame, usecase: Any
) -> None:
    s3 = endpoint
    good = capture_record(requests.head(2), [0.1, 0.2], HOUR, "ok", "1")
    short = capture_record(requests.head(2), [0.1], HOUR, "short", "1")  # two rows, one prediction
    no_version = capture_record(requests.head(1), [0.3], HOUR, "orphan")  # JSON answer without a version
    key = put_capture_file(
        s3,
        "Retired",  # a variant the endpoint no longer has
        HOUR,
        "mixed",
        [json.dumps(good), "{not json", json.dumps(short), json.dumps(no_version)],
    )
    loader = SageMakerCaptureLoader(
        SERVING, lake, s3=s3, sagemaker=aws_client(s3.meta.endpoint_url, "sagemaker")
    )
    synced = loader.sync(MODEL, capture_schema(usecase))
    assert (synced.files, synced.rows, synced.rejected) == (1, 2, 3)
    where = f"s3://mlops-dev-curated/{key}"
    assert synced.errors[0].startswith(f"{where} line 2: not JSON")
    assert synced.errors[1] == f"{where} line 3: 2 rows in the request, 1 predictions in the answer"
    assert (
        synced.errors[2]
        == f"{where} line 4: variant 'Retired': no model version in the answer or the endpoint"
    )
