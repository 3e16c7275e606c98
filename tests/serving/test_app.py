"""The inference app: SageMaker's contract, JSON and CSV, 4xx for every bad payload, variants, capture."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.adapters.local.online_store import SqliteOnlineStore
from pipelines.serving.app import INVOKED_VARIANT, TARGET_VARIANT, Variant, VariantRouter, create_app
from pipelines.serving.capture import LakeCapture
from pipelines.serving.handler import MAX_ROWS, InferenceHandler


@pytest.fixture
def rows(trained: tuple[Any, pd.DataFrame]) -> pd.DataFrame:
    bundle, test = trained
    return test[["customer_id", *bundle.feature_names]].head(20).reset_index(drop=True)


@pytest.fixture
def handler(
    trained: tuple[Any, pd.DataFrame], usecase: Any, tmp_path: Any, rows: pd.DataFrame
) -> InferenceHandler:
    online = SqliteOnlineStore(tmp_path / "online.db")
    online.write(
        usecase.features.name, rows.assign(feature_time=pd.Timestamp("2025-06-01", tz="UTC")), "customer_id"
    )
    return InferenceHandler(trained[0], usecase, online)


@pytest.fixture
def client(handler: InferenceHandler) -> TestClient:
    return TestClient(create_app(VariantRouter([Variant("champion", handler)], seed=1)))


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(rows.to_json(orient="records"))


def test_ping_and_json_invocations_batch_rows(
    client: TestClient, handler: InferenceHandler, rows: pd.DataFrame
) -> None:
    assert client.get("/ping").status_code == 200
    response = client.post("/invocations", json={"instances": _records(rows)})
    assert response.status_code == 200 and response.headers[INVOKED_VARIANT] == "champion"
    scores = [p["churn_probability"] for p in response.json()["predictions"]]
    expected = handler.bundle.predict_proba(rows)
    assert scores == pytest.approx(expected.tolist(), abs=1e-6)


def test_csv_in_and_out(client: TestClient, handler: InferenceHandler, rows: pd.DataFrame) -> None:
    response = client.post(
        "/invocations",
        content=rows.to_csv(index=False),
        headers={"content-type": "text/csv", "accept": "text/csv"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert [float(x) for x in response.text.split()] == pytest.approx(
        handler.bundle.predict_proba(rows).tolist(), abs=1e-5
    )


def test_keys_only_requests_read_the_online_store(
    client: TestClient, rows: pd.DataFrame, handler: InferenceHandler
) -> None:
    response = client.post("/invocations", json=[{"customer_id": k} for k in rows["customer_id"][:3]])
    assert response.status_code == 200
    assert [p["churn_probability"] for p in response.json()["predictions"]] == pytest.approx(
        handler.bundle.predict_proba(rows.head(3)).tolist(), abs=1e-6
    )
    unknown = client.post("/invocations", json={"customer_id": "nobody"})
    assert unknown.status_code == 404 and "nobody" in unknown.json()["error"]


def test_request_values_win_the_store_fills_what_is_left_out_and_the_answer_says_which(
    client: TestClient, rows: pd.DataFrame, handler: InferenceHandler
) -> None:
    row = _records(rows.head(1))[0]
    sent = {"customer_id": row["customer_id"], "amount_sum_30d": 5_000.0, "session_minutes": 12}
    response = client.post("/invocations", json=sent)
    assert response.status_code == 200, response.text
    sources = response.json()["feature_sources"]
    assert sources["request"] == ["amount_sum_30d"]
    assert "amount_sum_30d" not in sources["online_store"] and "event_count_7d" in sources["online_store"]
    assert sources["ignored"] == ["session_minutes"]  # a raw column is not a feature: said, not silent
    assert response.headers["X-Ignored-Fields"] == "session_minutes"
    expected = rows.head(1).assign(amount_sum_30d=5_000.0)
    assert response.json()["predictions"][0]["churn_probability"] == pytest.approx(
        float(handler.bundle.predict(expected)[0]), abs=1e-6
    )


def test_json_null_and_csv_empty_get_the_same_answer(
    client: TestClient, rows: pd.DataFrame, handler: InferenceHandler
) -> None:
    row = {**_records(rows.head(1))[0], "plan": None}
    as_json = client.post("/invocations", json=[row])
    csv = pd.DataFrame([row]).to_csv(index=False)
    as_csv = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    # plan is not nullable in the churn spec: both formats refuse it, with the same message.
    assert as_json.status_code == as_csv.status_code == 400
    assert as_json.json()["error"] == as_csv.json()["error"] and "plan" in as_json.json()["error"]


def _corpus(rows: pd.DataFrame) -> list[tuple[str, bytes, str, int, str]]:
    good = _records(rows.head(2))
    wrong_type = [{**good[0], "event_count_7d": "lots"}]
    missing = [{k: v for k, v in good[0].items() if k not in ("amount_sum_30d", "customer_id")}]
    unknown_country = [{**good[0], "country": "ZZ"}]
    negative = [{**good[0], "session_minutes_sum_7d": -5}]
    infinite = json.dumps(
        [{**good[0], "amount_sum_7d": float("inf")}]
    )  # "Infinity", which JSON parsers accept
    huge = json.dumps([good[0]] * (MAX_ROWS + 1))
    return [
        ("empty body", b"", "application/json", 400, "empty"),
        ("not JSON", b"{oops", "application/json", 400, "not valid JSON"),
        ("JSON scalar", b"42", "application/json", 400, "must be an object"),
        ("wrong type", json.dumps(wrong_type).encode(), "application/json", 400, "event_count_7d"),
        ("missing field", json.dumps(missing).encode(), "application/json", 400, "amount_sum_30d"),
        ("unknown category", json.dumps(unknown_country).encode(), "application/json", 400, "country"),
        ("negative count", json.dumps(negative).encode(), "application/json", 400, "session_minutes_sum_7d"),
        ("infinite", infinite.encode(), "application/json", 400, "amount_sum_7d"),
        ("too many rows", huge.encode(), "application/json", 413, "at most"),
        ("huge payload", b"[" + b" " * (7 * 1024 * 1024) + b"]", "application/json", 413, "exceeds"),
        ("bad CSV", b"\x00\x01", "text/csv", 400, ""),
        ("unsupported type", b"<x/>", "application/xml", 415, "unsupported content type"),
        ("empty list", b"[]", "application/json", 400, "no rows"),
    ]


def test_every_malformed_payload_gets_a_4xx_naming_the_problem_and_the_server_stays_up(
    client: TestClient, rows: pd.DataFrame
) -> None:
    for label, body, content_type, status, fragment in _corpus(rows):
        response = client.post("/invocations", content=body, headers={"content-type": content_type})
        assert response.status_code == status, label
        assert fragment in response.json()["error"], label
    assert client.get("/ping").status_code == 200
    assert client.post("/invocations", json=_records(rows.head(1))).status_code == 200


def test_weighted_variants_and_pinned_requests(handler: InferenceHandler, rows: pd.DataFrame) -> None:
    router = VariantRouter([Variant("champion", handler, 0.8), Variant("challenger", handler, 0.2)], seed=7)
    client = TestClient(create_app(router))
    seen = Counter(
        client.post("/invocations", json=_records(rows.head(1))).headers[INVOKED_VARIANT] for _ in range(400)
    )
    assert 0.7 < seen["champion"] / 400 < 0.9
    pinned = client.post("/invocations", json=_records(rows.head(1)), headers={TARGET_VARIANT: "challenger"})
    assert pinned.headers[INVOKED_VARIANT] == "challenger"
    assert (
        client.post("/invocations", json=_records(rows.head(1)), headers={TARGET_VARIANT: "nope"}).status_code
        == 400
    )
    router.set_weights({"champion": 0.0, "challenger": 1.0})
    assert {
        client.post("/invocations", json=_records(rows.head(1))).headers[INVOKED_VARIANT] for _ in range(20)
    } == {"challenger"}


def test_data_capture_lands_sampled_traffic_in_the_lake(
    platform: Any, handler: InferenceHandler, rows: pd.DataFrame
) -> None:
    capture = LakeCapture(
        platform.lake, "churn-model", sampling=1.0, flush_rows=15, seed=0, flush_seconds=None
    )
    client = TestClient(create_app(VariantRouter([Variant("champion", handler)]), capture))
    for start in range(0, 20, 5):
        client.post("/invocations", json=_records(rows.iloc[start : start + 5]))
    assert capture.flush() == 5  # 15 rows were flushed on their own, 5 were still buffered
    captured = platform.lake.read("capture.churn_model").to_pandas()
    assert len(captured) == 20 and set(captured["variant"]) == {"champion"}
    assert {"prediction", "captured_at", "event_count_7d"} <= set(captured.columns)


def test_capture_keeps_one_schema_whatever_json_types_clients_use(
    platform: Any, handler: InferenceHandler, rows: pd.DataFrame
) -> None:
    capture = LakeCapture(platform.lake, "churn-model", flush_rows=10_000, seed=0, flush_seconds=None)
    client = TestClient(create_app(VariantRouter([Variant("champion", handler)]), capture))
    record = _records(rows.head(1))[0]
    numeric = next(k for k, v in record.items() if isinstance(v, float))
    loose = {**record, "customer_id": 12345, numeric: int(record[numeric])}  # a number as key, an int
    for body in ([record], [loose], [record]):
        assert client.post("/invocations", json=body).status_code == 200
        assert capture.flush() == 1  # each its own commit: a second schema would fail and spill
    assert not capture.spilled()
    captured = platform.lake.read("capture.churn_model").to_pandas()
    assert captured["customer_id"].tolist() == [record["customer_id"], "12345", record["customer_id"]]
    assert captured[numeric].dtype == "float64"
