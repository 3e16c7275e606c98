"""The online store port: SQLite for real; SageMaker Feature Store runtime through botocore's Stubber
(moto does not implement PutRecord/GetRecord/BatchGetRecord)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber

from pipelines.adapters.aws.feature_store import SageMakerOnlineStore
from pipelines.adapters.local import online_store
from pipelines.adapters.local.online_store import SqliteOnlineStore, _jsonable, iso_instants, json_objects

ROWS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2"],
        "feature_time": [
            pd.Timestamp("2025-02-01T10:00:00+00:00"),
            pd.Timestamp("2025-02-02T00:00:00+00:00"),
        ],
        "event_count_7d": [3, 0],
        "amount_sum_7d": [12.5, 0.0],
        "country": ["DE", "FR"],
    }
)
DEFINITIONS = {
    "customer_id": "String",
    "feature_time": "String",
    "event_count_7d": "Integral",
    "amount_sum_7d": "Fractional",
    "country": "String",
}


def _record(row: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"FeatureName": k, "ValueAsString": v.isoformat() if isinstance(v, pd.Timestamp) else str(v)}
        for k, v in row.items()
    ]


class StubbedFeatureStore:
    """A SageMakerOnlineStore whose runtime and control clients answer from queued responses."""

    def __init__(self) -> None:
        self.runtime = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1")
        self.control = boto3.client("sagemaker", region_name="eu-west-1")
        self.runtime_stub, self.control_stub = Stubber(self.runtime), Stubber(self.control)
        self.runtime_stub.activate()
        self.control_stub.activate()
        self.waits: list[float] = []
        self.store = SageMakerOnlineStore("mlops-dev-", self.runtime, self.control, sleep=self.waits.append)

    def expect_puts(self, rows: pd.DataFrame) -> None:
        for row in rows.to_dict(orient="records"):
            self.runtime_stub.add_response(
                "put_record", {}, {"FeatureGroupName": "mlops-dev-customer-activity", "Record": _record(row)}
            )

    def expect_lookup(self, keys: list[str], rows: pd.DataFrame) -> None:
        self.control_stub.add_response(
            "describe_feature_group",
            {
                "FeatureGroupArn": "arn:aws:sagemaker:eu-west-1:1:feature-group/mlops-dev-customer-activity",
                "FeatureGroupName": "mlops-dev-customer-activity",
                "RecordIdentifierFeatureName": "customer_id",
                "EventTimeFeatureName": "feature_time",
                "FeatureDefinitions": [{"FeatureName": k, "FeatureType": v} for k, v in DEFINITIONS.items()],
                "CreationTime": pd.Timestamp("2025-01-01").to_pydatetime(),
                "NextToken": "",
            },
            {"FeatureGroupName": "mlops-dev-customer-activity"},
        )
        found = [r for r in rows.to_dict(orient="records") if r["customer_id"] in keys]
        self.runtime_stub.add_response(
            "batch_get_record",
            {
                "Records": [
                    {
                        "FeatureGroupName": "mlops-dev-customer-activity",
                        "RecordIdentifierValueAsString": r["customer_id"],
                        "Record": _record(r),
                    }
                    for r in found
                ],
                "Errors": [],
                "UnprocessedIdentifiers": [],
            },
            {
                "Identifiers": [
                    {
                        "FeatureGroupName": "mlops-dev-customer-activity",
                        "RecordIdentifiersValueAsString": keys,
                    }
                ]
            },
        )


@pytest.fixture(params=["local", "aws"])
def store_and_stub(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, StubbedFeatureStore | None]:
    if request.param == "local":
        return SqliteOnlineStore(tmp_path / "online.db"), None
    stubbed = StubbedFeatureStore()
    return stubbed.store, stubbed


def test_write_then_read_in_key_order_with_types(
    store_and_stub: tuple[Any, StubbedFeatureStore | None],
) -> None:
    store, stub = store_and_stub
    keys = ["c2", "unknown", "c1"]
    if stub:
        stub.expect_puts(ROWS)
        stub.expect_lookup(keys, ROWS)
    assert store.write("customer_activity", ROWS, "customer_id") == 2
    found = store.read("customer_activity", keys, "customer_id")
    assert list(found["customer_id"]) == ["c2", "c1"]
    first = found.iloc[1]
    assert first["event_count_7d"] == 3 and pd.api.types.is_integer(first["event_count_7d"])
    assert first["amount_sum_7d"] == 12.5 and first["country"] == "DE"
    assert first["feature_time"] == pd.Timestamp("2025-02-01T10:00:00+00:00")


def test_throttled_writes_are_retried_with_backoff() -> None:
    stub = StubbedFeatureStore()
    row = ROWS.head(1)
    for _ in range(2):
        stub.runtime_stub.add_client_error(
            "put_record", service_error_code="ThrottlingException", http_status_code=400, expected_params=None
        )
    stub.expect_puts(row)
    assert stub.store.write("customer_activity", row, "customer_id") == 1
    assert stub.waits == [0.2, 0.4]
    stub.runtime_stub.assert_no_pending_responses()


def test_other_errors_are_not_retried() -> None:
    stub = StubbedFeatureStore()
    stub.runtime_stub.add_client_error(
        "put_record", service_error_code="ValidationError", http_status_code=400, expected_params=None
    )
    with pytest.raises(Exception, match="ValidationError"):
        stub.store.write("customer_activity", ROWS.head(1), "customer_id")
    assert stub.waits == []


def test_large_writes_are_spread_over_batches_and_workers() -> None:
    calls: list[str] = []

    class CountingRuntime:
        def put_record(self, FeatureGroupName: str, Record: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803 - boto3's names
            calls.append(next(f["ValueAsString"] for f in Record if f["FeatureName"] == "customer_id"))
            return {}

    rows = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(1_050)],
            "feature_time": [pd.Timestamp("2025-01-01", tz="UTC")] * 1_050,
        }
    )
    store = SageMakerOnlineStore("mlops-dev-", CountingRuntime(), object(), batch_size=100, workers=4)
    assert store.write("customer_activity", rows, "customer_id") == 1_050
    assert sorted(calls) == sorted(rows["customer_id"])


def test_payloads_and_instants_are_the_text_json_and_isoformat_write() -> None:
    """The local store builds its payloads column by column: the same text as one `json.dumps` per row
    (numbers, non-finite floats, missing values of every kind, escapes, categories, instants)."""
    instants = pd.Series(
        pd.to_datetime(
            [
                "2025-10-17T13:36:54",
                "2025-10-17T13:36:54.5",
                "1969-12-31T23:59:59.000001",
                "2030-01-01T00:00:00.000000001",
            ],
            utc=True,
            format="ISO8601",
        )
    )
    rows = pd.DataFrame(
        {
            "count": np.array([3, -1, 0, 7], dtype=np.int64),
            "small": np.array([1, 2, 3, 255], dtype=np.uint8),
            "amount": [12.5, np.nan, np.inf, -np.inf],
            "ratio": np.array([0.1, 1 / 3, -2.5, 3e38], dtype=np.float32),
            "active": [True, False, True, False],
            "country": ["DE", None, 'q"\\é', "DE"],
            "plan": pd.Categorical(["pro", "basic", None, "pro"]),
            "mixed": pd.Series([None, float("nan"), "x", pd.NA], dtype=object),
            "seen": instants,
            "50%": [1, 2, 3, 4],
            "visits": pd.array([1, None, 3, 4], dtype="Int64"),
            "opted_in": pd.array([True, None, False, True], dtype="boolean"),
        }
    )
    names = list(rows.columns)
    want = [
        json.dumps({name: _jsonable(value) for name, value in zip(names, row, strict=True)})
        for row in zip(*(_plain(rows[name]) for name in names), strict=True)
    ]
    assert json_objects(rows, names) == want and json_objects(rows.iloc[:, :0], []) == ["{}"] * 4
    for unit in ("ns", "us"):
        column = instants.astype(f"datetime64[{unit}, UTC]")
        assert iso_instants(column) == [pd.Timestamp(moment).isoformat() for moment in column]
    gappy = pd.Series([instants[0], pd.NaT])
    assert iso_instants(gappy) == [pd.Timestamp(moment).isoformat() for moment in gappy]


def _plain(column: pd.Series) -> list[object]:
    """What the store wrote one value at a time before: numbers as Python numbers, the rest as is;
    nullable integers and booleans with a gap keep their values, the gap null."""
    numbers = column.dtype.kind in "fiub" and not (column.dtype.kind != "f" and column.isna().any())
    return column.to_numpy().tolist() if numbers else column.tolist()


def _one(entity: str, when: str, amount: float) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [entity], "feature_time": [pd.Timestamp(when)], "amount": [amount]})


def test_the_newest_row_wins_an_older_one_never_overwrites_and_a_tie_goes_to_the_later_write(
    tmp_path: Path,
) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    store.write("v", _one("a", "2025-03-02T00:00:00+00:00", 2.0), "customer_id")
    store.write("v", _one("a", "2025-03-01T00:00:00+00:00", 1.0), "customer_id")  # older: ignored
    store.write("v", _one("b", "2025-03-01T00:00:00+00:00", 1.0), "customer_id")
    store.write("v", _one("b", "2025-03-01T00:00:00+00:00", 5.0), "customer_id")  # a tie: the later write
    store.write("w", _one("a", "2025-04-01T00:00:00+00:00", 9.0), "customer_id")  # another view
    found = store.read("v", ["a", "b"], "customer_id").set_index("customer_id")["amount"]
    assert found.to_dict() == {"a": 2.0, "b": 5.0}


def test_superseded_rows_are_compacted_away_without_changing_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(online_store, "_SLACK_ROWS", 0)
    store = SqliteOnlineStore(tmp_path / "online.db")
    entities = [f"c{i}" for i in range(50)]
    for day in range(1, 5):  # each write supersedes the one before; the fourth passes 2x the live rows
        rows = pd.DataFrame(
            {
                "customer_id": entities,
                "feature_time": pd.Timestamp(f"2025-03-0{day}T00:00:00+00:00"),
                "amount": [float(day * 100 + i) for i in range(len(entities))],
            }
        )
        store.write("v", rows, "customer_id")
        store.write("v", _one("c0", "2025-02-01T00:00:00+00:00", -1.0), "customer_id")  # stale, never wins
    with sqlite3.connect(tmp_path / "online.db") as conn:
        (kept,) = conn.execute("SELECT count(*) FROM online_rows").fetchone()
    assert kept < 2 * len(entities) + 2  # compacted at least once: 4 x 51 rows were written
    found = store.read("v", entities, "customer_id")
    assert found["amount"].tolist() == [400.0 + i for i in range(len(entities))]


def test_a_store_written_before_rows_were_appended_is_carried_over(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE online_features (view TEXT NOT NULL, entity TEXT NOT NULL, feature_time TEXT NOT NULL, "
            "payload TEXT NOT NULL, PRIMARY KEY (view, entity))"
        )
        conn.execute(
            "INSERT INTO online_features VALUES ('v', 'a', '2025-03-01T00:00:00+00:00', '{\"amount\": 3.5}')"
        )
    store = SqliteOnlineStore(path)
    assert store.read("v", ["a"], "customer_id")["amount"].tolist() == [3.5]
    store.write("v", _one("a", "2025-02-01T00:00:00+00:00", 1.0), "customer_id")  # older than the carried row
    assert store.read("v", ["a"], "customer_id")["amount"].tolist() == [3.5]
    with sqlite3.connect(path) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'online_features'").fetchone()


def test_a_write_that_cannot_make_a_compaction_due_does_not_count_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    opened = online_store.connect

    @contextmanager
    def traced(path: Path) -> Iterator[sqlite3.Connection]:
        with opened(path) as conn:
            conn.set_trace_callback(statements.append)
            yield conn

    monkeypatch.setattr(online_store, "connect", traced)
    store = SqliteOnlineStore(tmp_path / "online.db")
    entities = [f"c{i}" for i in range(2_000)]
    first = pd.DataFrame(
        {"customer_id": entities, "feature_time": pd.Timestamp("2025-03-01T00:00:00+00:00"), "amount": 1.0}
    )
    store.write("v", first, "customer_id")  # the first write counts: nothing was counted before
    assert any("GROUP BY" in s for s in statements)
    statements.clear()
    store.write("v", _one("c7", "2025-03-02T00:00:00+00:00", 2.0), "customer_id")
    assert not any("GROUP BY" in s for s in statements)  # at most 1 superseded row against 2,000 live
    assert store.read("v", ["c7", "c8"], "customer_id")["amount"].tolist() == [2.0, 1.0]
