"""The query engine port: DuckDB over the local lake, and Athena over Glue + S3 (moto) with Athena's
API stubbed by botocore's Stubber (requests validated against Athena's service model). The stub's
"Athena" runs the statement it is sent: the UNLOAD's SELECT, read as Trino, against the Iceberg
snapshot it names, with results written as Parquet where the UNLOAD says. Both engines must give
the in-process features row for row."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from botocore.stub import ANY, Stubber
from pyiceberg.catalog.sql import SqlCatalog
from sqlglot import exp

from mlops.contract import ContractError, PlatformContract, parse_contract
from mlops.paths import PACKAGE_ROOT
from pipelines.adapters.aws.athena import AthenaQueryEngine, QueryFailed
from pipelines.adapters.aws.lake import glue_identifier, glue_lake
from pipelines.adapters.iceberg_lake import IcebergLake
from pipelines.adapters.local.query import DuckDBQueryEngine
from pipelines.datagen.examples import generate_example
from pipelines.features.compute import FEATURE_TIME, compute_window_features
from pipelines.features.engine import engine_feature_batches
from pipelines.ports import LakePort
from pipelines.usecase import UseCase, load_usecase
from tests.aws_emulator import aws_client, make_bucket, make_lake

TABLE = "curated.store_demand"
UNLOAD = re.compile(
    r"^UNLOAD \(\n(?P<select>.*)\n\) TO '(?P<location>s3://[^']+/)' "
    r"WITH \(format = 'PARQUET', compression = 'SNAPPY'\)$",
    re.DOTALL,
)


@pytest.fixture(scope="module")
def usecase() -> UseCase:
    return load_usecase(PACKAGE_ROOT / "usecases" / "store_demand.yaml")


def _land(lake: LakePort, usecase: UseCase) -> tuple[int, pd.DataFrame]:
    """Two snapshots of curated events; returns the first one's id and what it holds."""
    events = generate_example(usecase, 3_000, 4)
    first, second = events.iloc[:2_000], events.iloc[2_000:]
    snapshot = lake.append(TABLE, pa.Table.from_pandas(first, preserve_index=False), {})
    lake.append(TABLE, pa.Table.from_pandas(second, preserve_index=False), {})
    return snapshot.snapshot_id, first


def _expected(usecase: UseCase, events: pd.DataFrame) -> pd.DataFrame:
    rows = compute_window_features(events, usecase)
    return rows.sort_values([usecase.dataset.entity_key, FEATURE_TIME], kind="stable").reset_index(drop=True)


def _engine_rows(engine: Any, usecase: UseCase, snapshot_id: int) -> pd.DataFrame:
    """Every feature row the engine streams (in no particular order), ordered as the expected rows."""
    rows = engine_feature_batches(engine, usecase, TABLE, snapshot_id).read_all().to_pandas()
    order = [usecase.dataset.entity_key, FEATURE_TIME]
    return rows.sort_values(order, kind="stable").reset_index(drop=True)


def _same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = actual.assign(**{FEATURE_TIME: pd.to_datetime(actual[FEATURE_TIME], utc=True)})
    expected = expected.assign(**{FEATURE_TIME: pd.to_datetime(expected[FEATURE_TIME], utc=True)})
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9, check_dtype=False)


def test_duckdb_reads_the_snapshot_asked_for(usecase: UseCase, tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    lake = IcebergLake(
        SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "warehouse").as_uri())
    )
    snapshot_id, first = _land(lake, usecase)
    engine = DuckDBQueryEngine(lake, memory_limit="256MB", spill_directory=tmp_path / "spill")
    _same(_engine_rows(engine, usecase, snapshot_id), _expected(usecase, first))


class _EmulatedAthena:
    """Runs what the adapter sends, as Athena would: the SELECT against the named Iceberg snapshot."""

    def __init__(self, lake: LakePort, s3: Any, database: str) -> None:
        self.lake, self.s3, self.database = lake, s3, database
        self.statements: list[str] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        import duckdb

        statement = params["QueryString"]
        self.statements.append(statement)
        unload = UNLOAD.match(statement)
        assert unload, f"not an Athena UNLOAD to Parquet: {statement[:200]}"
        tree = sqlglot.parse_one(unload["select"], read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        (table,) = [t for t in tree.find_all(exp.Table) if t.args.get("version") is not None]
        assert f"{table.db}.{table.name}" == glue_identifier(self.database, TABLE)
        snapshot_id = int(table.args["version"].expression.name)
        columns = [c.name for c in table.parent_select.expressions]
        table.replace(exp.to_table("snapshot_rows"))
        connection = duckdb.connect()
        connection.register("snapshot_rows", self.lake.read(TABLE, columns=columns, snapshot_id=snapshot_id))
        result = connection.sql(tree.sql(dialect="duckdb")).to_arrow_table()
        bucket, _, prefix = unload["location"].removeprefix("s3://").partition("/")
        # Athena's workers write parts in no particular order: the later rows come first here.
        for part, rows in enumerate((result.slice(len(result) // 2), result.slice(0, len(result) // 2))):
            body = io.BytesIO()
            pq.write_table(rows, body)
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}part-{part}.parquet", Body=body.getvalue())


def _athena(region: str = "eu-west-1") -> Any:
    return boto3.client("athena", region_name=region, aws_access_key_id="t", aws_secret_access_key="t")


def _status(state: str, reason: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    return {"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}}


def test_athena_unloads_the_trino_query_over_the_glue_snapshot(
    aws: str, kms_key: str, usecase: UseCase
) -> None:
    contract = make_lake(aws, kms_key)
    lake = glue_lake(contract, "eu-west-1")
    snapshot_id, first = _land(lake, usecase)
    s3 = aws_client(aws, "s3")
    results = make_bucket(aws, "mlops-dev-athena-results")
    athena = _athena()
    emulated = _EmulatedAthena(lake, s3, contract.glue_database)
    athena.meta.events.register("provide-client-params.athena.StartQueryExecution", emulated)
    engine = AthenaQueryEngine(
        athena, s3, "mlops-dev", contract.glue_database, f"s3://{results}/features", poll_seconds=0.0
    )
    with Stubber(athena) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": ANY,
                "WorkGroup": "mlops-dev",
                "QueryExecutionContext": {"Database": contract.glue_database, "Catalog": "AwsDataCatalog"},
            },
        )
        stub.add_response("get_query_execution", _status("RUNNING"), {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", _status("SUCCEEDED"), {"QueryExecutionId": "q-1"})
        features = _engine_rows(engine, usecase, snapshot_id)
        stub.assert_no_pending_responses()
    _same(features, _expected(usecase, first))
    assert len(emulated.statements) == 1 and f"FOR VERSION AS OF {snapshot_id}" in emulated.statements[0]


def test_a_failed_athena_query_says_why(aws: str) -> None:
    athena = _athena()
    engine = AthenaQueryEngine(
        athena, aws_client(aws, "s3"), "wg", "db", "s3://results-bucket/x", poll_seconds=0.0
    )
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, None)
        stub.add_response("get_query_execution", _status("FAILED", "TABLE_NOT_FOUND: db.t"), None)
        with pytest.raises(QueryFailed, match=re.escape("q-1 failed: TABLE_NOT_FOUND: db.t")):
            engine.query("SELECT 1 AS x FROM events", "events", "curated.t", ["x"], 1)


def _contract_with(query: dict[str, Any]) -> str:
    from mlops.bootstrap import local_contract
    from mlops.settings import load_settings

    payload = local_contract(load_settings("local")).model_dump(mode="json")
    return json.dumps({**payload, "query": query})


def test_a_contract_without_a_query_section_uses_the_embedded_engine() -> None:
    from mlops.bootstrap import local_contract
    from mlops.settings import load_settings

    payload = local_contract(load_settings("local")).model_dump(mode="json")
    payload.pop("query")
    assert PlatformContract.model_validate(payload).query.kind == "local"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"kind": "spark"}, "query"),
        ({"kind": "aws", "results_location": "s3://results-bucket/q"}, "query.aws.workgroup"),
        ({"kind": "aws", "workgroup": "wg", "results_location": "results"}, "query.aws.results_location"),
        ({"kind": "local", "memory_limit": "lots"}, "query.local.memory_limit"),
    ],
)
def test_bad_engine_configuration_is_one_clear_line(query: dict[str, Any], named: str) -> None:
    with pytest.raises(ContractError) as error:
        parse_contract(_contract_with(query), "contract.json")
    message = str(error.value)
    assert named in message and "Traceback" not in message


def test_a_negative_engine_threshold_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from mlops.settings import SettingsError, load_settings

    settings = yaml.safe_load((PACKAGE_ROOT / "environments" / "local.yaml").read_text())
    settings["pipeline"]["features"] = {"query_engine_from_rows": -1}
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "local.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(SettingsError) as error:
        load_settings("local")
    assert "pipeline.features.query_engine_from_rows" in str(error.value)
    assert "-1" in str(error.value)
