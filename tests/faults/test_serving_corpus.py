"""Hostile requests: every malformed or abusive input is a 4xx with a reason, the server keeps serving,
and data capture neither fails a request nor loses a row, whatever clients send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.serving.app import MAX_BODY_BYTES, Variant, VariantRouter, create_app
from pipelines.serving.capture import LakeCapture
from pipelines.serving.handler import InferenceHandler

JSON = {"content-type": "application/json"}


@pytest.fixture
def handler(trained: tuple[Any, pd.DataFrame], usecase: Any) -> InferenceHandler:
    return InferenceHandler(trained[0], usecase, None)


@pytest.fixture
def row(trained: tuple[Any, pd.DataFrame]) -> dict[str, Any]:
    bundle, test = trained
    record: dict[str, Any] = json.loads(
        test[["customer_id", *bundle.feature_names]].head(1).to_json(orient="records")
    )[0]
    return record


def _corpus(row: dict[str, Any]) -> dict[str, tuple[bytes, dict[str, str], int]]:
    """name → (body, headers, expected status)."""
    one = json.dumps(row)
    first_numeric = next(k for k, v in row.items() if isinstance(v, float))
    return {
        "arrays nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, JSON, 400),
        "objects nested 100,000 deep": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, JSON, 400),
        "a value nested 5,000 deep": (
            one[:-1].encode() + b', "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
            JSON,
            400,
        ),
        "lone surrogate value": (one.replace(f'"{row["customer_id"]}"', '"\\ud800"').encode(), JSON, 400),
        "lone surrogate key": (one[:-1].encode() + b', "\\udfff": 1}', JSON, 400),
        "integer with 400 digits": (
            one.replace(json.dumps(row[first_numeric]), "1" * 400, 1).encode(),
            JSON,
            400,
        ),
        "nested value in a field": (json.dumps({**row, first_numeric: {"a": 1}}).encode(), JSON, 400),
        "NaN": (one.replace(json.dumps(row[first_numeric]), "NaN", 1).encode(), JSON, 400),
        "Infinity": (one.replace(json.dumps(row[first_numeric]), "-Infinity", 1).encode(), JSON, 400),
        "text where a number belongs": (json.dumps({**row, first_numeric: "twelve"}).encode(), JSON, 400),
        "truncated JSON": (one[: len(one) // 2].encode(), JSON, 400),
        "latin-1 bytes": ('{"customer_id": "ä"}'.encode("latin-1"), JSON, 400),
        "binary": (bytes(range(256)) * 4, JSON, 400),
        "empty body": (b"", JSON, 400),
        "a bare number": (b"42", JSON, 400),
        "a list of numbers": (b"[1, 2, 3]", JSON, 400),
        "no fields": (b"{}", JSON, 400),
        "too many rows": (json.dumps([row] * 10_001).encode(), JSON, 413),
        "xml": (b"<row/>", {"content-type": "application/xml"}, 415),
        "csv without header": (b"1,2,3\n", {"content-type": "text/csv"}, 400),
    }


def test_every_hostile_request_is_a_4xx_with_a_reason(handler: InferenceHandler, row: dict[str, Any]) -> None:
    client = TestClient(
        create_app(VariantRouter([Variant("champion", handler)])), raise_server_exceptions=False
    )
    corpus = _corpus(row)
    for name, (body, headers, status) in corpus.items():
        response = client.post("/invocations", content=body, headers=headers)
        assert response.status_code == status, (name, response.status_code, response.text[:200])
        assert response.json()["error"], name
    assert client.post("/invocations", json=row).status_code == 200  # still serving
    assert len(corpus) == 20


def test_an_oversized_body_is_refused_by_its_length_before_it_is_read(handler: InferenceHandler) -> None:
    client = TestClient(create_app(VariantRouter([Variant("champion", handler)])))
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(100):  # 100 MB offered; the server must stop reading long before
            sent.append(1)
            yield b" " * 1_000_000

    declared = client.post(
        "/invocations", content=b"x", headers={**JSON, "content-length": str(100 * 1_000_000)}
    )
    assert declared.status_code == 413
    streamed = client.post("/invocations", content=body(), headers=JSON)
    assert streamed.status_code == 413 and f"exceeds {MAX_BODY_BYTES} bytes" in streamed.json()["error"]


def test_unknown_fields_never_reach_the_capture_table(
    platform: Any, handler: InferenceHandler, row: dict[str, Any]
) -> None:
    capture = LakeCapture(platform.lake, "churn-model", flush_rows=50, seed=0, flush_seconds=None)
    client = TestClient(create_app(VariantRouter([Variant("champion", handler)]), capture))
    for index in range(120):
        extra = {f"client_field_{index}": "x"} if index % 3 == 0 else {}
        assert client.post("/invocations", json={**row, **extra}).status_code == 200
    capture.close()
    captured = platform.lake.read("capture.churn_model").to_pandas()
    assert len(captured) == 120  # nothing dropped
    assert not [c for c in captured.columns if c.startswith("client_field")]
    assert int(captured["extra_fields"].sum()) == 40


class _FlakyLake:
    """A lake whose commits fail until `healthy` is set (an outage of the catalog or the store)."""

    def __init__(self, lake: Any) -> None:
        self.lake, self.healthy = lake, False

    def append(self, table: str, data: Any, properties: dict[str, str]) -> Any:
        if not self.healthy:
            raise OSError("catalog unavailable")
        return self.lake.append(table, data, properties)


def test_a_failing_commit_spills_rows_and_never_fails_a_request(
    platform: Any, handler: InferenceHandler, row: dict[str, Any], tmp_path: Path
) -> None:
    lake = _FlakyLake(platform.lake)
    capture = LakeCapture(
        lake, "churn-model", flush_rows=10, seed=0, spill_dir=tmp_path / "spill", flush_seconds=None
    )  # type: ignore[arg-type]
    client = TestClient(create_app(VariantRouter([Variant("champion", handler)]), capture))
    for _ in range(35):
        assert client.post("/invocations", json=row).status_code == 200
    assert capture.flush() == 0 and capture.spilled()  # the outage: rows kept on local disk
    lake.healthy = True
    assert client.post("/invocations", json=row).status_code == 200
    assert capture.close() == 36  # spilled rows first, then the buffer
    assert not capture.spilled()
    assert len(platform.lake.read("capture.churn_model").to_pandas()) == 36


def test_rows_spilled_for_one_lake_never_reach_another(platform: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    from pipelines.adapters.iceberg_lake import IcebergLake

    (tmp_path / "other").mkdir()
    other = IcebergLake(
        SqlCatalog("local", uri=f"sqlite:///{tmp_path / 'other.db'}", warehouse=(tmp_path / "other").as_uri())
    )
    ours = LakeCapture(platform.lake, "churn-model", flush_seconds=None)
    theirs = LakeCapture(other, "churn-model", flush_seconds=None)
    assert ours.spill_dir != theirs.spill_dir  # same table name, another environment's lake
    ours._spill(pa.table({"customer_id": ["c1"], "prediction": [0.5]}))
    assert theirs.flush() == 0 and other.current_snapshot("capture.churn_model") is None
    assert ours.flush() == 1 and not ours.spilled()
    # The same lake opened again (a restart, another worker) finds what was left for it.
    assert LakeCapture(platform.lake, "churn-model", flush_seconds=None).spill_dir == ours.spill_dir
