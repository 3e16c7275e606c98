"""Data capture, as SageMaker endpoints do it: a sample of requests and responses kept in the lake.

Capture never fails a request and never drops a row. Only the model's declared inputs are kept (a
client cannot add columns to the capture table; the number of fields it sent beyond them is kept in
`extra_fields`). Rows are buffered and committed by a background writer, never inside a request:
when `flush_rows` are pending, or `flush_seconds` after the first pending row (so a quiet endpoint's
traffic reaches the lake within seconds, not at shutdown). A commit that fails is spilled to a local
Parquet file and retried before the next commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ports import LakePort
from pipelines.serving.handler import CAPTURED_EVENT_TIME

log = logging.getLogger(__name__)


class LakeCapture:
    """Buffers sampled rows and appends them to `capture.<model>`: the entity key and declared
    inputs, the prediction, the variant and model version, an inference id per row, the event time
    the prediction is about and the time it was made (what the quality flow joins labels to)."""

    def __init__(
        self,
        lake: LakePort,
        model_name: str,
        sampling: float = 1.0,
        flush_rows: int = 1_000,
        seed: int | None = None,
        spill_dir: Path | None = None,
        flush_seconds: float | None = 5.0,
    ) -> None:
        if not 0 <= sampling <= 1:
            raise ValueError("sampling must be between 0 and 1")
        self.lake, self.table = lake, capture_table(model_name)
        self.sampling, self.flush_rows = sampling, flush_rows
        self.random = random.Random(seed)
        self.buffer: list[CapturedRequest] = []
        self.pending_rows = 0
        self.lock = threading.Lock()
        self.writing = threading.Lock()  # one commit at a time
        self.spill_dir = spill_dir or default_spill_dir(lake, self.table)
        self.writer: threading.Thread | None = None
        self.flush_seconds = flush_seconds
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    def capture(
        self,
        variant: str,
        rows: Mapping[str, Sequence[Any]] | pd.DataFrame,
        scores: Sequence[float],
        extra_fields: int = 0,
        version: str = "",
    ) -> str | None:
        """Buffer a sample of `rows` (the columns to keep, by name) with their scores; never raises.
        Returns the request's inference id when it was captured (row i is `<id>-<i>`), else None.

        The request only hands over references: building the table is the writer's work.
        """
        try:
            if self.random.random() >= self.sampling:
                return None
            request_id = uuid.uuid4().hex
            pending = CapturedRequest(
                variant, rows, scores, extra_fields, datetime.now(UTC), version, request_id
            )
            with self.lock:
                self.buffer.append(pending)
                self.pending_rows += len(scores)
                start = self.pending_rows >= self.flush_rows and (
                    self.writer is None or not self.writer.is_alive()
                )
                if start:
                    self.writer = threading.Thread(target=self.flush, name="capture-writer", daemon=True)
                    self.writer.start()
                if self.flush_seconds and self._ticker is None and not self._stopped.is_set():
                    self._ticker = threading.Thread(target=self._tick, name="capture-ticker", daemon=True)
                    self._ticker.start()
            return request_id
        except Exception:  # capture is best effort for the request; its rows are what matters
            log.exception("data capture skipped a request")
            return None

    def flush(self) -> int:
        """Commit what is spilled, then what is buffered; returns the rows committed. Never raises."""
        writer = self.writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()  # the background commit first, so rows land in the order they came
        with self.writing:
            written = self._retry_spilled()
            with self.lock:
                pending, self.buffer, self.pending_rows = self.buffer, [], 0
            if not pending:
                return written
            table = capture_arrow(pd.concat([p.frame() for p in pending], ignore_index=True))
            try:
                self.lake.append(self.table, table, {"mlops.capture": "endpoint"})
                return written + len(table)
            except Exception as exc:
                path = self._spill(table)
                log.warning("data capture commit failed (%s); %d rows kept in %s", exc, len(table), path)
                return written

    def _tick(self) -> None:
        """Commit what is pending every `flush_seconds`, until closed."""
        assert self.flush_seconds
        while not self._stopped.wait(self.flush_seconds):
            with self.lock:
                pending = bool(self.buffer)
            if pending or self.spilled():
                self.flush()

    def close(self) -> int:
        """Stop the timer and commit everything still buffered or spilled (at shutdown)."""
        self._stopped.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        return self.flush()

    def spilled(self) -> list[Path]:
        return sorted(self.spill_dir.glob("*.parquet")) if self.spill_dir.exists() else []

    def _spill(self, table: pa.Table) -> Path:
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(table, path)
        return path

    def _retry_spilled(self) -> int:
        """Commit spilled files, each claimed first: several worker processes share the spill folder,
        and a file must reach the lake once. A claim whose process died is released for retry."""
        self._release_orphaned_claims()
        written = 0
        for path in self.spilled():
            claim = path.with_name(f"{path.name}.{os.getpid()}{CLAIM_SUFFIX}")
            try:
                path.rename(claim)  # atomic: one worker wins, the others skip the file
            except FileNotFoundError:
                continue
            try:
                table = pq.read_table(claim)
                self.lake.append(self.table, table, {"mlops.capture": "endpoint"})
            except Exception as exc:
                claim.rename(path)
                log.warning("spilled capture %s not committed yet: %s", path.name, exc)
                return written
            claim.unlink()
            written += len(table)
        return written

    def _release_orphaned_claims(self) -> None:
        if not self.spill_dir.exists():
            return
        for claim in self.spill_dir.glob(f"*{CLAIM_SUFFIX}"):
            original, _, pid = claim.name.removesuffix(CLAIM_SUFFIX).rpartition(".")
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    claim.rename(claim.with_name(original))


CLAIM_SUFFIX = ".claim"


def default_spill_dir(lake: LakePort, table: str) -> Path:
    """Where rows wait when a commit fails: one folder per lake, shared by the worker processes that
    serve it and found again after a restart, and never by another environment's lake (its rows
    must not be committed there). A lake that does not say which it is gets a folder of its own."""
    identity = getattr(lake, "identity", None)
    if not isinstance(identity, str):
        return Path(tempfile.mkdtemp(prefix="mlops-capture-spill-")) / table
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "mlops-capture-spill" / digest / table


@dataclass(frozen=True)
class CapturedRequest:
    """One captured request, as handed over: turned into rows by the writer, not the request (or by
    the loader of SageMaker's capture files, which builds the same rows)."""

    variant: str
    rows: Mapping[str, Sequence[Any]] | pd.DataFrame
    scores: Sequence[float]
    extra_fields: int
    captured_at: datetime
    version: str = ""
    request_id: str = ""

    def frame(self) -> pd.DataFrame:
        """The request's rows as the capture table stores them."""
        frame = pd.DataFrame(self.rows if isinstance(self.rows, pd.DataFrame) else dict(self.rows))
        frame["extra_fields"] = self.extra_fields
        frame["prediction"] = list(self.scores)
        frame["variant"] = self.variant
        frame["captured_at"] = pd.Timestamp(self.captured_at)
        frame[INFERENCE_ID] = [f"{self.request_id}-{i}" for i in range(len(frame))]
        frame[MODEL_VERSION] = self.version
        # What the prediction is about: the request's event time when it sent one, else now.
        sent = frame[EVENT_TIME] if EVENT_TIME in frame.columns else None
        times = pd.to_datetime(sent, utc=True, errors="coerce", format="mixed") if sent is not None else None
        captured = pd.Timestamp(self.captured_at)
        frame[EVENT_TIME] = captured if times is None else times.fillna(captured)
        return frame


def capture_table(model_name: str) -> str:
    """The lake table holding `model_name`'s captured traffic."""
    return f"capture.{model_name.replace('-', '_')}"


INFERENCE_ID = "inference_id"
MODEL_VERSION = "model_version"
EVENT_TIME = CAPTURED_EVENT_TIME


def capture_arrow(batch: pd.DataFrame) -> pa.Table:
    """Captured rows as the capture table stores them."""
    for column in batch.columns:
        if batch[column].dtype == object:  # mixed client types become text; a null stays null
            batch[column] = [None if pd.isna(v) else str(v) for v in batch[column]]
    return pa.Table.from_pandas(batch, preserve_index=False)
