"""A corpus of bad batches: each is rejected with a reason naming the column, quarantined byte for byte,
and leaves raw and curated exactly as they were. A CLI run of one of them prints the data as text."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors
from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
from pipelines.lake.ingest import BatchRejected, curated_table, ingest_file, raw_table
from pipelines.platform import Platform


def _set(column: str, value: object, rows: slice = slice(0, 3)) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value
        return frame

    return change


def _times(*stamps: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for index, stamp in enumerate(stamps):
            frame.loc[frame.index[index], "event_time"] = pd.Timestamp(stamp, tz="UTC")
        return frame

    return change


# name → (change to a clean batch, text every rejection reason list must contain)
CORPUS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "event time in 2100": (_times("2100-01-01T00:00:00"), "event_time: expect_column_values_to_be_between"),
    "event time in 2999": (_times("2999-12-31T23:59:59"), "event_time: expect_column_values_to_be_between"),
    "event time in 1969": (_times("1969-12-31T00:00:00"), "event_time: expect_column_values_to_be_between"),
    "event time a week ahead": (
        _times(str(pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=7))),
        "event_time: expect_column_values_to_be_between",
    ),
    "unparseable event time": (
        _set("event_time", "yesterday"),
        "event_time: expect_column_values_to_not_be_null",
    ),
    "markup in a category": (_set("country", "[/x]"), "country: expect_column_values_to_be_in_set"),
    "brackets in a category": (
        _set("country", "[inf, inf, inf]"),
        "country: expect_column_values_to_be_in_set",
    ),
    "unknown plan": (_set("plan", "platinum"), "plan: expect_column_values_to_be_in_set"),
    "negative minutes": (
        _set("session_minutes", -5.0),
        "session_minutes: expect_column_values_to_be_between",
    ),
    "text amount": (_set("amount", "12,50"), "amount: expect_column_values_to_be_in_type_list"),
    "null event id": (_set("event_id", None), "event_id: expect_column_values_to_not_be_null"),
    "duplicate event ids": (
        _set("event_id", "same-id", slice(0, 5)),
        "event_id: expect_column_values_to_be_unique",
    ),
    "missing column": (lambda f: f.drop(columns=["plan"]), "plan: expect_column_to_exist"),
}

RAW_FILES = {
    "binary garbage": (b"\x00\x9f\x92\x96" * 500, "could not be parsed"),
    "truncated parquet": (None, "could not be parsed"),
    "latin-1 csv": ("event_id,customer_id\nä,ö\n".encode("latin-1"), "could not be parsed"),
}


@pytest.fixture(scope="module")
def clean(usecase) -> pd.DataFrame:
    return generate_churn_events(usecase.dataset, ChurnDataConfig(rows=1_000, seed=13))


def _lake_state(platform: Platform, usecase) -> tuple[object, object]:
    tables = (raw_table(usecase.dataset), curated_table(usecase.dataset))
    return tuple(getattr(platform.lake.current_snapshot(t), "snapshot_id", None) for t in tables)  # type: ignore[return-value]


def _assert_rejected(platform: Platform, usecase, path: Path, expected: str) -> BatchRejected:
    before = _lake_state(platform, usecase)
    with pytest.raises(BatchRejected) as caught:
        ingest_file(platform, usecase.dataset, path)
    assert expected in str(caught.value), str(caught.value)
    assert _lake_state(platform, usecase) == before  # raw and curated untouched
    quarantined = Path(caught.value.quarantine_uri.removeprefix("file://")) / path.name
    assert quarantined.read_bytes() == path.read_bytes()  # nothing lost
    return caught.value


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_bad_batch_is_rejected_and_quarantined(
    platform: Platform, usecase, clean: pd.DataFrame, tmp_path: Path, case: str
) -> None:
    change, expected = CORPUS[case]
    path = tmp_path / "batch.csv"
    change(clean).to_csv(path, index=False)
    _assert_rejected(platform, usecase, path, expected)


@pytest.mark.parametrize("case", sorted(RAW_FILES))
def test_unreadable_files_are_rejected_and_quarantined(
    platform: Platform, usecase, clean: pd.DataFrame, tmp_path: Path, case: str
) -> None:
    content, expected = RAW_FILES[case]
    if content is None:
        buffer = io.BytesIO()
        clean.to_parquet(buffer, index=False)
        content = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    path = tmp_path / ("batch.parquet" if case == "truncated parquet" else "batch.csv")
    path.write_bytes(content)
    _assert_rejected(platform, usecase, path, expected)


def test_the_clean_batch_of_the_corpus_lands(
    platform: Platform, usecase, clean: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "clean.csv"
    clean.to_csv(path, index=False)
    assert ingest_file(platform, usecase.dataset, path).new_curated_rows == len(clean)


@pytest.mark.parametrize("value", ["[/x]", "[inf, inf, inf]", "[nan]", "[bold red]"])
def test_rejections_print_data_as_text_never_as_markup(
    platform: Platform,
    usecase,
    clean: pd.DataFrame,
    tmp_path: Path,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "batch.csv"
    _set("country", value)(clean).to_csv(path, index=False)
    printed = io.StringIO()
    monkeypatch.setattr("mlops.cli.errors.err", Console(file=printed, width=300, soft_wrap=True))
    with pytest.raises(typer.Exit), friendly_errors():
        ingest_file(platform, usecase.dataset, path)
    assert value in printed.getvalue()  # no MarkupError, and the sample is shown as it is


def test_prefect_records_of_a_rejection_lose_their_traceback_unless_verbose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging
    import sys

    from mlops.cli.errors import _ExpectedOutcomes, quiet_expected_outcomes

    try:
        raise BatchRejected("batch b.csv rejected\n  - country: expect_column_values_to_be_in_set", "q", "r")
    except BatchRejected:
        record = logging.LogRecord(
            "prefect.flow_runs", logging.ERROR, __file__, 1, "Encountered: %s", ("x\ny",), sys.exc_info()
        )
    assert _ExpectedOutcomes().filter(record)
    assert record.exc_info is None and record.getMessage() == "Encountered: x"
    run_logger = logging.getLogger("prefect.flow_runs")
    kept = list(run_logger.filters)
    try:
        run_logger.filters = []
        monkeypatch.setenv("MLOPS_VERBOSE", "1")
        quiet_expected_outcomes()
        assert not run_logger.filters  # --verbose keeps the tracebacks
        monkeypatch.delenv("MLOPS_VERBOSE")
        quiet_expected_outcomes()
        assert any(isinstance(f, _ExpectedOutcomes) for f in run_logger.filters)
    finally:
        run_logger.filters = kept
