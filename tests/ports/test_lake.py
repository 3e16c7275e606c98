"""The lake port: the same assertions against Iceberg on SQLite + files and on Glue + S3 (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from pipelines.adapters.aws.lake import glue_lake
from pipelines.adapters.iceberg_lake import IcebergLake, repeating_columns
from pipelines.ports import LakePort, RowFilter
from tests.aws_emulator import aws_client, make_lake


@pytest.fixture(params=["local", "aws"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> LakePort:
    if request.param == "local":
        (tmp_path / "warehouse").mkdir()
        return IcebergLake(
            SqlCatalog(
                "t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
            )
        )
    endpoint = request.getfixturevalue("aws")
    contract = make_lake(endpoint, request.getfixturevalue("kms_key"))
    return glue_lake(contract, "eu-west-1")


def _rows(ids: list[str]) -> pa.Table:
    return pa.table({"id": ids, "value": [float(i) for i in range(len(ids))]})


def test_appends_are_snapshots_with_their_properties(lake: LakePort) -> None:
    assert lake.current_snapshot("raw.events") is None and lake.snapshots("raw.events") == []
    first = lake.append("raw.events", _rows(["a", "b"]), {"mlops.batch-id": "b1"})
    second = lake.append("raw.events", _rows(["c"]), {"mlops.batch-id": "b2"})
    assert first.snapshot_id != second.snapshot_id
    assert lake.current_snapshot("raw.events") == second
    assert [s.properties["mlops.batch-id"] for s in lake.snapshots("raw.events")] == ["b1", "b2"]
    assert lake.read("raw.events").num_rows == 3
    assert lake.read("raw.events", snapshot_id=first.snapshot_id).num_rows == 2  # time travel
    assert lake.read("raw.events", columns=["id"]).column_names == ["id"]


def test_overwrite_replaces_rows_but_keeps_history(lake: LakePort) -> None:
    before = lake.overwrite("features.view", _rows(["a", "b", "c"]), {"mlops.source-snapshot": "1"})
    after = lake.overwrite("features.view", _rows(["z"]), {"mlops.source-snapshot": "2"})
    assert lake.read("features.view").column("id").to_pylist() == ["z"]
    assert lake.read("features.view", snapshot_id=before.snapshot_id).num_rows == 3
    assert after.properties["mlops.source-snapshot"] == "2"


def test_filtered_reads_return_exactly_the_rows_asked_for(lake: LakePort) -> None:
    stamps = [datetime(2026, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4)]
    lake.append("curated.events", pa.table({"id": ["a", "b"], "at": stamps[:2], "n": [1, 2]}), {})
    lake.append("curated.events", pa.table({"id": ["c", "d"], "at": stamps[2:], "n": [3, 4]}), {})
    # A value set is matched exactly (not as its range: "b" and "c" lie between "a" and "d").
    picked = lake.read("curated.events", columns=["id"], where=RowFilter(any_of={"id": ("a", "d")}))
    assert sorted(picked.column("id").to_pylist()) == ["a", "d"] and picked.column_names == ["id"]
    recent = lake.read("curated.events", where=RowFilter(at_least={"at": stamps[1]}))
    assert sorted(recent.column("id").to_pylist()) == ["b", "c", "d"]
    both = RowFilter(any_of={"id": ("a", "c")}, at_least={"at": stamps[1]})
    assert lake.read("curated.events", where=both).column("id").to_pylist() == ["c"]
    assert lake.read("curated.events", where=RowFilter(any_of={"id": ()})).num_rows == 0
    assert lake.schema("curated.events").names == ["id", "at", "n"]


def test_rows_appended_between_two_snapshots(lake: LakePort) -> None:
    first = lake.append("curated.events", _rows(["a", "b"]), {})
    lake.append("curated.events", _rows(["c"]), {})
    third = lake.append("curated.events", _rows(["d", "e"]), {})
    added = lake.appended_since("curated.events", first.snapshot_id, third.snapshot_id)
    assert added is not None and sorted(added.column("id").to_pylist()) == ["c", "d", "e"]
    rewritten = lake.overwrite("curated.events", _rows(["z"]), {})
    assert lake.appended_since("curated.events", first.snapshot_id, rewritten.snapshot_id) is None
    assert lake.appended_since("curated.events", 12345, rewritten.snapshot_id) is None


def test_missing_table_is_a_clear_error(lake: LakePort) -> None:
    with pytest.raises(KeyError, match=r"curated\.nope does not exist"):
        lake.read("curated.nope")


def test_glue_tables_live_in_the_environment_database_and_buckets(aws: str, kms_key: str) -> None:
    lake = glue_lake(make_lake(aws, kms_key), "eu-west-1")
    lake.append("raw.events", _rows(["a"]), {})
    lake.append("curated.events", _rows(["a"]), {})
    tables = {
        t["Name"]: t for t in aws_client(aws, "glue").get_tables(DatabaseName="mlops_dev_lake")["TableList"]
    }
    assert set(tables) == {"raw__events", "curated__events"}
    assert tables["raw__events"]["Parameters"]["table_type"].upper() == "ICEBERG"
    s3 = aws_client(aws, "s3")
    assert any(
        o["Key"].startswith("iceberg/raw/events/") for o in s3.list_objects_v2(Bucket="raw")["Contents"]
    )
    assert any(
        o["Key"].startswith("iceberg/curated/events/")
        for o in s3.list_objects_v2(Bucket="curated")["Contents"]
    )


def test_a_commit_that_fails_after_the_data_is_written_leaves_nothing_visible(
    lake: LakePort, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data files of an append are written first and the catalog commit makes them visible: a crash
    at the commit (an outage of Glue, a killed process) leaves readers on the previous snapshot."""
    first = lake.append("raw.events", _rows(["a", "b"]), {"mlops.batch-id": "b1"})
    catalog = lake.catalog  # type: ignore[attr-defined]

    def unavailable(*args: object, **kwargs: object) -> None:
        raise OSError("catalog unavailable at commit")

    monkeypatch.setattr(catalog, "commit_table", unavailable)
    with pytest.raises(OSError, match="at commit"):
        lake.append("raw.events", _rows(["c", "d", "e"]), {"mlops.batch-id": "b2"})
    monkeypatch.undo()
    assert lake.current_snapshot("raw.events") == first
    assert sorted(lake.read("raw.events").column("id").to_pylist()) == ["a", "b"]
    assert [s.properties["mlops.batch-id"] for s in lake.snapshots("raw.events")] == ["b1"]
    lake.append("raw.events", _rows(["c"]), {"mlops.batch-id": "b2"})  # the lake is usable again
    assert lake.read("raw.events").num_rows == 3


def test_a_stream_of_batches_is_one_snapshot_and_scans_back_batch_by_batch(lake: LakePort) -> None:
    batches = [_rows([f"{part}-{i}" for i in range(50)]) for part in "abc"]
    snapshot = lake.append_batches("predictions.m", iter(batches), {"mlops.run-id": "r1"})
    assert [s.snapshot_id for s in lake.snapshots("predictions.m")] == [snapshot.snapshot_id]
    assert snapshot.properties["mlops.run-id"] == "r1" and snapshot.properties["added-records"] == "150"
    reader = lake.scan("predictions.m", columns=["id"], snapshot_id=snapshot.snapshot_id)
    scanned = [batch.num_rows for batch in reader]
    assert sum(scanned) == 150 and len(scanned) >= 3  # one file per batch, read one at a time
    assert sorted(lake.read("predictions.m").column("id").to_pylist()) == sorted(
        [value for b in batches for value in b.column("id").to_pylist()]
    )


def test_only_columns_whose_values_repeat_are_dictionary_encoded(lake: LakePort) -> None:
    rows = 3_000
    data = pa.table(
        {
            "id": [f"e{i}" for i in range(rows)],
            "score": [i / 7 for i in range(rows)],
            "plan": ["basic", "pro", None] * (rows // 3),
            "run_id": ["r1"] * rows,
        }
    )
    assert repeating_columns(data) == ["plan", "run_id"]
    assert repeating_columns(pa.table({"tags": [[1], [2]]})) == ["tags"]  # no hash kernel: Parquet decides
    lake.append_batches("predictions.m", iter([data]), {})
    assert lake.read("predictions.m").to_pylist() == data.to_pylist()  # nothing read back changes


def test_a_stream_that_dies_half_way_commits_nothing(lake: LakePort) -> None:
    first = lake.append_batches("predictions.m", iter([_rows(["a"])]), {"mlops.run-id": "r1"})

    def dying() -> Iterator[pa.Table]:
        yield _rows(["b", "c"])  # written to a data file
        raise MemoryError("killed half-way")

    with pytest.raises(MemoryError):
        lake.append_batches("predictions.m", dying(), {"mlops.run-id": "r2"})
    assert lake.snapshots("predictions.m") == [first]
    assert lake.read("predictions.m").column("id").to_pylist() == ["a"]


def test_an_empty_stream_still_records_its_snapshot(lake: LakePort) -> None:
    empty = pa.table({"id": pa.array([], pa.string()), "value": pa.array([], pa.float64())})
    snapshot = lake.append_batches("predictions.m", iter([empty]), {"mlops.run-id": "r0"})
    assert lake.current_snapshot("predictions.m") == snapshot
    assert lake.read("predictions.m").num_rows == 0
    with pytest.raises(ValueError, match="no batch"):
        lake.append_batches("predictions.other", iter([]), {})


def test_a_stream_overwrites_the_table_in_one_visible_commit(lake: LakePort) -> None:
    before = lake.overwrite("features.view", _rows(["a", "b", "c"]), {"mlops.source-snapshot": "1"})
    batches = [_rows(["x", "y"]).to_batches()[0], _rows(["z"])]
    after = lake.overwrite_batches("features.view", iter(batches), {"mlops.source-snapshot": "2"})
    assert lake.current_snapshot("features.view") == after
    assert after.properties["mlops.source-snapshot"] == "2"
    assert sorted(lake.read("features.view").column("id").to_pylist()) == ["x", "y", "z"]
    assert lake.read("features.view", snapshot_id=before.snapshot_id).num_rows == 3

    def dying() -> Iterator[pa.Table]:
        yield _rows(["q"])
        raise MemoryError("killed half-way")

    with pytest.raises(MemoryError):
        lake.overwrite_batches("features.view", dying(), {"mlops.source-snapshot": "3"})
    assert lake.current_snapshot("features.view") == after
    assert sorted(lake.read("features.view").column("id").to_pylist()) == ["x", "y", "z"]
    empty = lake.overwrite_batches("features.view", iter([_rows([])]), {"mlops.source-snapshot": "4"})
    assert lake.current_snapshot("features.view") == empty and lake.read("features.view").num_rows == 0


def _manifest_count(lake: IcebergLake, table: str) -> int:
    loaded = lake.catalog.load_table(lake.identifier(table))
    snapshot = loaded.current_snapshot()
    assert snapshot is not None
    return len(snapshot.manifests(loaded.io))


def test_appends_merge_their_manifests_so_planning_follows_the_data_not_the_commits(
    lake: LakePort,
) -> None:
    assert isinstance(lake, IcebergLake)
    lake.table_properties["commit.manifest.min-count-to-merge"] = "4"  # the table's own value is kept
    snapshots = [
        lake.append_batches("raw.events", [_rows([f"r{n}-a", f"r{n}-b"])], {"n": str(n)}) for n in range(12)
    ]
    assert _manifest_count(lake, "raw.events") < 4  # a fast append would leave 12, one per commit
    assert lake.read("raw.events").num_rows == 24
    assert lake.read("raw.events", snapshot_id=snapshots[3].snapshot_id).num_rows == 8  # time travel
    added = lake.appended_since("raw.events", snapshots[-2].snapshot_id, snapshots[-1].snapshot_id, ["id"])
    assert added is not None and sorted(added.column("id").to_pylist()) == ["r11-a", "r11-b"]
    assert [s.properties["n"] for s in lake.snapshots("raw.events")] == [str(n) for n in range(12)]


def test_a_table_created_without_merged_manifests_gets_them_at_its_next_write(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )
    catalog.create_namespace("raw")
    older = catalog.create_table("raw.events", schema=_rows(["a"]).schema)
    older.append(_rows(["a"]))
    assert "commit.manifest-merge.enabled" not in older.properties
    lake = IcebergLake(catalog)
    lake.append("raw.events", _rows(["b"]), {})
    properties = catalog.load_table("raw.events").properties
    assert properties["commit.manifest-merge.enabled"] == "true"
    assert properties["commit.manifest.min-count-to-merge"] == "10"
    assert sorted(lake.read("raw.events").column("id").to_pylist()) == ["a", "b"]


def _expiring(lake: LakePort, keep: int) -> IcebergLake:
    """The lake with tables whose snapshots expire as soon as they leave the newest `keep`."""
    assert isinstance(lake, IcebergLake)
    lake.table_properties.update(
        {"history.expire.max-snapshot-age-ms": "0", "history.expire.min-snapshots-to-keep": str(keep)}
    )
    lake.expire_at_once = 2
    return lake


def test_old_snapshots_expire_and_their_records_stay_in_the_history(lake: LakePort) -> None:
    lake = _expiring(lake, keep=3)
    written = [lake.append("raw.events", _rows([f"r{n}"]), {"mlops.batch-id": f"b{n}"}) for n in range(8)]
    readable = lake.snapshots("raw.events")
    assert 3 <= len(readable) < 5  # expired two at a time once they leave the newest three
    assert readable[-1] == written[-1] == lake.current_snapshot("raw.events")
    history = lake.history("raw.events")
    assert [s.snapshot_id for s in history] == [s.snapshot_id for s in written]
    assert [s.properties["mlops.batch-id"] for s in history] == [f"b{n}" for n in range(8)]
    assert [s.expired for s in history] == [s not in readable for s in written]
    assert all(s.expired for s in history[:4])
    assert sorted(lake.read("raw.events").column("id").to_pylist()) == [f"r{n}" for n in range(8)]
    with pytest.raises(KeyError, match="retention expired it"):
        lake.read("raw.events", snapshot_id=written[0].snapshot_id)
    loaded = lake.catalog.load_table(lake.identifier("raw.events"))
    assert len(loaded.metadata.snapshot_log) == len(readable)  # the metadata no longer lists them


def test_a_retained_snapshot_stays_readable_past_retention(lake: LakePort) -> None:
    lake = _expiring(lake, keep=1)
    first = lake.append("raw.events", _rows(["a"]), {"mlops.batch-id": "b0"})
    assert lake.retain("raw.events", {"model/m/v1": first.snapshot_id}) == []
    assert lake.retain("raw.events", {"model/m/v1": first.snapshot_id}) == []  # again: nothing changes
    for n in range(1, 6):
        lake.append("raw.events", _rows([f"r{n}"]), {"mlops.batch-id": f"b{n}"})
    assert first.snapshot_id in {s.snapshot_id for s in lake.snapshots("raw.events")}
    assert lake.read("raw.events", snapshot_id=first.snapshot_id).column("id").to_pylist() == ["a"]
    assert [s.expired for s in lake.history("raw.events")] == [False, True, True, True, True, False]
    gone, current = lake.history("raw.events")[1], lake.history("raw.events")[-1]
    kept = {"model/m/v2": gone.snapshot_id, "model/m/v3": current.snapshot_id}
    assert lake.retain("raw.events", kept) == ["model/m/v2"]  # expired already: reported, not kept
    refs = lake.catalog.load_table(lake.identifier("raw.events")).metadata.refs
    assert refs["model/m/v3"].snapshot_id == current.snapshot_id and "model/m/v2" not in refs


def test_an_expiry_that_fails_to_commit_leaves_the_table_and_its_history_as_they_were(
    lake: LakePort, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyiceberg.exceptions import CommitFailedException

    from pipelines.adapters import iceberg_retention

    lake = _expiring(lake, keep=1)
    ledgers: list[str] = []
    real_write = iceberg_retention.pq.write_table

    def recording(rows: pa.Table, stream: object) -> None:
        ledgers.append(str(getattr(stream, "_path", stream)))
        real_write(rows, stream)

    def conflict(self: object, ids: list[int]) -> None:
        raise CommitFailedException("another writer committed first")

    monkeypatch.setattr(iceberg_retention.pq, "write_table", recording)
    monkeypatch.setattr(iceberg_retention.ExpireSnapshots, "by_ids", conflict)
    written = [lake.append("raw.events", _rows([f"r{n}"]), {"mlops.batch-id": f"b{n}"}) for n in range(4)]
    assert ledgers  # an expiry was tried, and its ledger file written first
    assert lake.snapshots("raw.events") == written  # every write landed; nothing expired
    assert [s.expired for s in lake.history("raw.events")] == [False] * 4
    loaded = lake.catalog.load_table(lake.identifier("raw.events"))
    assert "mlops.expired-snapshots" not in loaded.properties
    monkeypatch.undo()
    lake.append("raw.events", _rows(["r4"]), {"mlops.batch-id": "b4"})  # the next write expires them
    assert [s.expired for s in lake.history("raw.events")] == [True] * 4 + [False]


def test_expiry_deletes_the_files_only_expired_snapshots_referenced(lake: LakePort) -> None:
    lake = _expiring(lake, keep=1)

    def table() -> Table:
        return lake.catalog.load_table(lake.identifier("features.view"))

    def data_files(snapshot_id: int) -> set[str]:
        return {task.file.file_path for task in table().scan(snapshot_id=snapshot_id).plan_files()}

    tagged = lake.overwrite("features.view", _rows(["a"]), {})
    assert lake.retain("features.view", {"model/m/v1": tagged.snapshot_id}) == []
    rebuilt = lake.overwrite("features.view", _rows(["b"]), {})
    doomed = data_files(rebuilt.snapshot_id) | {
        table().metadata.snapshot_by_id(rebuilt.snapshot_id).manifest_list
    }
    for n in range(3):  # later rebuilds: `rebuilt` leaves the newest one and expires
        current = lake.overwrite("features.view", _rows([f"c{n}"]), {})
    assert rebuilt.snapshot_id in {s.snapshot_id for s in lake.history("features.view") if s.expired}
    io = table().io
    assert doomed and not any(io.new_input(path).exists() for path in doomed)
    kept = data_files(tagged.snapshot_id) | data_files(current.snapshot_id)
    assert all(io.new_input(path).exists() for path in kept)
    assert lake.read("features.view", snapshot_id=tagged.snapshot_id).column("id").to_pylist() == ["a"]
    assert lake.read("features.view").column("id").to_pylist() == ["c2"]


def test_a_file_already_deleted_does_not_fail_the_write_that_expires_its_snapshot(lake: LakePort) -> None:
    lake = _expiring(lake, keep=1)
    lake.expire_at_once = 100  # nothing expires until the file is gone
    first = lake.overwrite("features.view", _rows(["a"]), {})
    lake.overwrite("features.view", _rows(["b"]), {})
    table = lake.catalog.load_table(lake.identifier("features.view"))
    snapshot = table.metadata.snapshot_by_id(first.snapshot_id)
    assert snapshot is not None
    table.io.delete(snapshot.manifest_list)  # an outside cleanup got there first
    lake.expire_at_once = 2
    for n in range(3):
        lake.overwrite("features.view", _rows([f"b{n}"]), {})
    assert lake.history("features.view")[0].expired
    assert lake.read("features.view").column("id").to_pylist() == ["b2"]
