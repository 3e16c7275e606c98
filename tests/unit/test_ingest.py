"""Ingest: valid batches land once; every kind of bad batch is quarantined and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.lake.ingest import BatchRejected, curated_table, ingest_file, raw_table
from pipelines.platform import Platform


@pytest.fixture
def landed(platform: Platform, usecase, small_events: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "batch.parquet"
    small_events.to_parquet(path, index=False)
    ingest_file(platform, usecase.dataset, path)
    return path


def _snapshot(platform: Platform, table: str) -> int | None:
    current = platform.lake.current_snapshot(table)
    return current.snapshot_id if current else None


def test_batch_lands_in_raw_and_curated_with_snapshots(
    platform: Platform, usecase, small_events, tmp_path: Path
) -> None:
    path = tmp_path / "batch.parquet"
    small_events.to_parquet(path, index=False)
    result = ingest_file(platform, usecase.dataset, path)
    assert result.rows == result.new_curated_rows == len(small_events)
    assert result.raw_snapshot_id == _snapshot(platform, raw_table(usecase.dataset))
    assert result.curated_snapshot_id == _snapshot(platform, curated_table(usecase.dataset))
    curated = platform.lake.read(curated_table(usecase.dataset)).to_pandas()
    assert len(curated) == len(small_events)
    assert set(curated.columns) == set(usecase.dataset.columns)
    assert Path(result.report_uri.removeprefix("file://")).exists()


def test_same_batch_twice_does_not_duplicate(platform: Platform, usecase, landed: Path) -> None:
    before = (
        _snapshot(platform, raw_table(usecase.dataset)),
        _snapshot(platform, curated_table(usecase.dataset)),
    )
    again = ingest_file(platform, usecase.dataset, landed)
    assert again.already_ingested and again.new_curated_rows == 0
    after = (
        _snapshot(platform, raw_table(usecase.dataset)),
        _snapshot(platform, curated_table(usecase.dataset)),
    )
    assert before == after
    assert platform.lake.read(curated_table(usecase.dataset), columns=["event_id"]).num_rows == 20_000


def test_overlapping_batch_adds_only_new_rows(
    platform: Platform, usecase, small_events, landed: Path, tmp_path: Path
) -> None:
    overlap = pd.concat(
        [
            small_events.iloc[:100],
            generate_churn_events(usecase.dataset, ChurnDataConfig(rows=1_500, seed=99)),
        ]
    )
    path = tmp_path / "overlap.csv"
    overlap.to_csv(path, index=False)
    result = ingest_file(platform, usecase.dataset, path)
    assert result.rows == 1_600 and result.new_curated_rows == 1_500
    assert platform.lake.read(curated_table(usecase.dataset), columns=["event_id"]).num_rows == 21_500
    assert platform.lake.read(raw_table(usecase.dataset), columns=["event_id"]).num_rows == 21_600


BAD_BATCHES = {
    "null_keys": "customer_id: expect_column_values_to_not_be_null",
    "out_of_range": "session_minutes: expect_column_values_to_be_between",
    "wrong_types": "amount: expect_column_values_to_be_in_type_list",
    "duplicates": "event_id: expect_column_values_to_be_unique",
}


@pytest.mark.parametrize("fault", sorted(BAD_BATCHES))
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_batch_is_quarantined_and_changes_nothing(
    platform: Platform, usecase, landed: Path, tmp_path: Path, fault: str, suffix: str
) -> None:
    bad = generate_churn_events(
        usecase.dataset, ChurnDataConfig(rows=2_000, seed=5, faults=(fault,), fault_fraction=0.02)
    )
    path = tmp_path / f"bad{suffix}"
    if fault == "wrong_types" and suffix == ".parquet":
        bad["amount"] = bad["amount"].astype(
            str
        )  # Parquet holds one type per column: text instead of numbers
    bad.to_csv(path, index=False) if suffix == ".csv" else bad.to_parquet(path, index=False)
    tables = (raw_table(usecase.dataset), curated_table(usecase.dataset))
    before = [_snapshot(platform, t) for t in tables]
    with pytest.raises(BatchRejected) as rejected:
        ingest_file(platform, usecase.dataset, path)
    assert BAD_BATCHES[fault] in str(rejected.value)
    assert [_snapshot(platform, t) for t in tables] == before
    quarantine = Path(rejected.value.quarantine_uri.removeprefix("file://"))
    assert (quarantine / path.name).read_bytes() == path.read_bytes()
    assert json.loads((quarantine / "rejection.json").read_text())["reasons"]
    report = Path(rejected.value.report_uri.removeprefix("file://"))
    assert report.suffix == ".html" and BAD_BATCHES[fault].split(": ")[0] in report.read_text()


@pytest.mark.parametrize("content", [b"", b"event_id,customer_id\n"])
def test_empty_file_is_quarantined(platform: Platform, usecase, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(
        BatchRejected, match=r"empty|expect_table_row_count_to_be_between|expect_column_to_exist"
    ):
        ingest_file(platform, usecase.dataset, path)
    assert platform.lake.current_snapshot(curated_table(usecase.dataset)) is None


def test_unknown_format_is_quarantined(platform: Platform, usecase, tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not really")
    with pytest.raises(BatchRejected, match="unsupported format"):
        ingest_file(platform, usecase.dataset, path)


def test_missing_file_is_a_clear_error(platform: Platform, usecase, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        ingest_file(platform, usecase.dataset, tmp_path / "nope.parquet")


def test_a_batch_landed_in_chunks_is_the_batch_landed_whole(
    platform: Platform, usecase, small_events: pd.DataFrame, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    small_events.iloc[:12_000].to_parquet(first, index=False)
    small_events.iloc[8_000:].to_parquet(second, index=False)  # 4,000 rows already curated
    ingest_file(platform, usecase.dataset, first, chunk_rows=1_000)
    result = ingest_file(platform, usecase.dataset, second, chunk_rows=1_000)
    assert (result.rows, result.new_curated_rows) == (12_000, 8_000)
    raw_snapshots = platform.lake.snapshots(raw_table(usecase.dataset))
    assert len(raw_snapshots) == 2  # one commit per batch, however many chunks
    curated = platform.lake.read(curated_table(usecase.dataset)).to_pandas()
    key = usecase.dataset.primary_key[0]
    expected = small_events[list(curated.columns)].sort_values(key).reset_index(drop=True)
    got = curated.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_key_repeated_in_another_chunk_rejects_the_batch(
    platform: Platform, usecase, small_events: pd.DataFrame, tmp_path: Path
) -> None:
    key = usecase.dataset.primary_key[0]
    batch = small_events.iloc[:5_000].copy()
    batch.loc[batch.index[4_500], key] = batch.loc[batch.index[3], key]
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, index=False)
    with pytest.raises(BatchRejected, match=f"{key}: expect_column_values_to_be_unique"):
        ingest_file(platform, usecase.dataset, path, chunk_rows=1_000)
    assert platform.lake.current_snapshot(raw_table(usecase.dataset)) is None


def test_a_batch_whose_snapshots_expired_is_still_known_as_ingested(
    platform: Platform, usecase, small_events: pd.DataFrame, tmp_path: Path
) -> None:
    from pipelines.adapters.iceberg_lake import IcebergLake

    lake = platform.lake
    assert isinstance(lake, IcebergLake)
    lake.table_properties.update(
        {"history.expire.max-snapshot-age-ms": "0", "history.expire.min-snapshots-to-keep": "1"}
    )
    lake.expire_at_once = 1
    paths = []
    for number, start in enumerate(range(0, 12_000, 4_000)):
        paths.append(tmp_path / f"batch-{number}.parquet")
        small_events.iloc[start : start + 4_000].to_parquet(paths[-1], index=False)
        ingest_file(platform, usecase.dataset, paths[-1])
    raw = raw_table(usecase.dataset)
    assert [s.expired for s in lake.history(raw)] == [True, True, False]
    again = ingest_file(platform, usecase.dataset, paths[0])
    assert again.already_ingested and again.rows == 0
    assert lake.read(raw).num_rows == 12_000 and len(lake.history(raw)) == 3
