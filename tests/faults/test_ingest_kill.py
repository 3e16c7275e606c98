"""SIGKILL between ingest's two commits (raw, then curated): the next run completes the batch.

The kill lands exactly between the commits through the fault point `ingest.after-raw`
(pipelines/faults.py), in a real child process, not by sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from pipelines.faults import FAULT_VARIABLE
from pipelines.lake.ingest import curated_table, ingest_file, raw_table
from pipelines.platform import Platform

CHILD = """
import sys
from pathlib import Path
from mlops.bootstrap import bring_up_local
from mlops.settings import load_settings
from pipelines.lake.ingest import ingest_file
from pipelines.platform import connect
from pipelines.usecase import load_usecase

settings = load_settings("local")
platform = connect(bring_up_local(settings).contract)
ingest_file(platform, load_usecase(settings.pipeline.usecase_path()).dataset, Path(sys.argv[1]))
"""


def _ingest_in_child(path: Path, fault: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != FAULT_VARIABLE}
    if fault:
        env[FAULT_VARIABLE] = fault
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, check=False, timeout=300
    ).returncode


def _rows(platform: Platform, table: str) -> int:
    return (
        0
        if platform.lake.current_snapshot(table) is None
        else platform.lake.read(table, columns=["event_id"]).num_rows
    )


def test_a_batch_killed_between_raw_and_curated_is_completed_by_the_rerun(
    platform: Platform, usecase, small_events: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "batch.parquet"
    small_events.to_parquet(path, index=False)
    raw, curated = raw_table(usecase.dataset), curated_table(usecase.dataset)

    assert _ingest_in_child(path, "ingest.after-raw") == -signal.SIGKILL
    assert (_rows(platform, raw), _rows(platform, curated)) == (len(small_events), 0)  # half-landed

    assert _ingest_in_child(path, None) == 0
    assert (_rows(platform, raw), _rows(platform, curated)) == (len(small_events), len(small_events))
    raw_snapshots = len(platform.lake.snapshots(raw))  # the rerun did not land raw a second time
    assert raw_snapshots == 1

    again = ingest_file(platform, usecase.dataset, path)
    assert again.already_ingested and again.new_curated_rows == 0
    assert _rows(platform, curated) == len(small_events)
