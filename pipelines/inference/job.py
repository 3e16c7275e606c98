"""The batch-inference job: what runs in this process locally and in a Batch container on AWS.

It streams the input snapshot and the feature snapshot through the point-in-time join in chunks,
scores each chunk from the model's ONNX file (model as data: no training code is needed to
score) and writes the predictions as one Iceberg snapshot whose summary names the model version
and both input snapshots. The job checks first whether that snapshot already exists, so a retried
or repeated job writes nothing new; a job killed half-way has committed nothing.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract import Artifacts, Lake
from pipelines.faults import fault_point
from pipelines.features.compute import FEATURE_TIME
from pipelines.prefetch import prefetched
from pipelines.progress import Progress

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from pipelines.ports import LakePort, Snapshot

log = logging.getLogger(__name__)

# Summary properties of a predictions snapshot: its lineage, and the key that makes a run idempotent.
MODEL_VERSION = "mlops.model-version"
INPUT_TABLE = "mlops.input-table"
INPUT_SNAPSHOT = "mlops.input-snapshot"
FEATURES_TABLE = "mlops.features-table"
FEATURES_SNAPSHOT = "mlops.features-snapshot"
RUN_ID = "mlops.run-id"
SCORE = "score"
JOIN_AHEAD = 1  # joined chunks waiting for the scorer: each is `chunk_rows` rows held in memory
SCORED_AHEAD = 1  # scored chunks waiting for the writer (keys and a score: smaller than a joined chunk)


class BatchInferenceSpec(BaseModel):
    """Everything the job needs, passed by URI like a training run spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    model_name: str
    model_version: int = Field(ge=1)
    model_uri: str
    input_table: str
    input_snapshot_id: int
    input_rows: int = Field(ge=0)
    key_columns: list[str] = Field(min_length=2)  # carried from the input: keys, entity, event time
    entity_key: str
    event_time: str
    features_table: str
    features_snapshot_id: int
    ttl_days: int = Field(ge=0)
    output_table: str
    lake: Lake
    region: str | None = None
    artifacts: Artifacts
    result_key: str
    chunk_rows: int = Field(ge=1_000)
    memory_limit: str

    def identity(self) -> dict[str, str]:
        """What makes two runs the same run: the model version and the input snapshot."""
        return {
            MODEL_VERSION: str(self.model_version),
            INPUT_TABLE: self.input_table,
            INPUT_SNAPSHOT: str(self.input_snapshot_id),
        }


def existing_predictions(lake: LakePort, table: str, identity: Mapping[str, str]) -> Snapshot | None:
    """The predictions snapshot a run with this identity already committed, if any (its record,
    when retention has expired it since)."""
    for snapshot in lake.history(table):
        if all(snapshot.properties.get(k) == v for k, v in identity.items()):
            return snapshot
    return None


def feature_arrays(
    batch: pa.RecordBatch, numeric: list[str], categorical: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A joined batch as the scorer takes it: numbers as one float matrix (missing: NaN), and each
    categorical column as its values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False) for name in numeric]
    matrix = np.column_stack(columns) if columns else np.zeros((batch.num_rows, 0))
    return matrix, {name: _texts(batch.column(name)) for name in categorical}


def _texts(column: pa.Array) -> np.ndarray:
    """A categorical column as an object array of text and None (what the ONNX scorer takes whole)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # One Python string per distinct value, not per row (a few against 200,000 per chunk).
        encoded = pc.dictionary_encode(column)
        values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
        return np.asarray(values[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()])
    return np.array([None if v is None else str(v) for v in column.to_pylist()], dtype=object)


def run_batch_inference(spec: BatchInferenceSpec) -> dict[str, Any]:
    """Score the input snapshot and commit the predictions (once); returns and stores the result."""
    from pipelines.adapters.factory import artifact_store
    from pipelines.platform import lake_for

    lake, _ = lake_for(spec.lake, spec.region)
    store = artifact_store(spec.artifacts)
    done = existing_predictions(lake, spec.output_table, spec.identity())
    if done is not None:
        log.info(
            "predictions of v%d on %s@%d exist already: snapshot %d",
            spec.model_version,
            spec.input_table,
            spec.input_snapshot_id,
            done.snapshot_id,
        )
        result = result_of(spec, done, seconds=0.0, written=False)
    else:
        result = _score_and_commit(spec, lake)
    store.put_bytes(spec.result_key, json.dumps(result, indent=2).encode())
    return result


def _score_and_commit(spec: BatchInferenceSpec, lake: LakePort) -> dict[str, Any]:
    from pipelines.features.as_of import as_of_batches
    from pipelines.onnx_model import load_for_scoring

    bundle, scorer = load_for_scoring(spec.model_uri, batch=True)
    numeric, categorical = list(bundle.encoder.numeric), list(bundle.encoder.categorical)
    available = set(lake.schema(spec.features_table).names)
    missing = [c for c in [*numeric, *categorical] if c not in available]
    if missing:
        raise ValueError(
            f"{spec.features_table} has no column {', '.join(missing)} that {spec.model_name} "
            f"v{spec.model_version} needs: build the features of its use case first"
        )
    progress = Progress(spec.input_rows, "rows", log)
    with (
        tempfile.TemporaryDirectory(prefix="mlops-batch-inference-") as workdir,
        # The next chunk is joined while this one is scored and written (JOIN_AHEAD chunks at most).
        prefetched(
            as_of_batches(
                lake.scan(spec.input_table, spec.key_columns, spec.input_snapshot_id),
                lambda: lake.scan(
                    spec.features_table,
                    [spec.entity_key, FEATURE_TIME, *numeric, *categorical],
                    spec.features_snapshot_id,
                ),
                spec.entity_key,
                spec.event_time,
                spec.ttl_days,
                Path(workdir),
                spec.memory_limit,
                spec.chunk_rows,
            ),
            depth=JOIN_AHEAD,
            name="batch-inference-join",
        ) as joined,
    ):
        keys = lake.schema(spec.input_table)
        key_types = {name: keys.field(name).type for name in spec.key_columns}
        properties = {
            **spec.identity(),
            FEATURES_TABLE: spec.features_table,
            FEATURES_SNAPSHOT: str(spec.features_snapshot_id),
            RUN_ID: spec.run_id,
        }
        # Three stages, each on its own thread: the join, the scorer, and this thread writing files.
        with prefetched(
            _scored(spec, joined, scorer, numeric, categorical, key_types, progress),
            depth=SCORED_AHEAD,
            name="batch-inference-score",
        ) as scored:
            snapshot = lake.append_batches(spec.output_table, _after_first_written(scored), properties)
    return result_of(spec, snapshot, progress.finish(), written=True)


def _after_first_written(scored: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The scored chunks as the writer takes them; the fault point fires once the writer asks for the
    second chunk, so the first one's file is written and nothing is committed."""
    for chunk, rows in enumerate(scored):
        yield rows
        if chunk == 0:
            fault_point("batch-inference.after-first-chunk")


def _scored(
    spec: BatchInferenceSpec,
    joined: Iterator[pa.RecordBatch],
    scorer: Any,
    numeric: list[str],
    categorical: list[str],
    key_types: Mapping[str, pa.DataType],
    progress: Progress,
) -> Iterator[pa.Table]:
    """Each joined chunk as prediction rows: the input's keys, the score and the lineage columns."""
    import pyarrow as pa

    empty = True
    for batch in joined:
        if batch.num_rows == 0:
            continue
        empty = False
        scores = scorer.predict_arrays(*feature_arrays(batch, numeric, categorical))
        yield _prediction_rows(spec, {name: batch.column(name) for name in spec.key_columns}, scores)
        progress.advance(batch.num_rows)
    if empty:  # the schema of an empty result, so the table exists and the run is recorded
        yield _prediction_rows(spec, {name: pa.array([], kind) for name, kind in key_types.items()}, [])


def _prediction_rows(spec: BatchInferenceSpec, keys: Mapping[str, pa.Array], scores: Any) -> pa.Table:
    import pyarrow as pa

    rows = len(scores)
    columns: dict[str, pa.Array] = dict(keys)
    columns[SCORE] = pa.array(scores, pa.float64())
    columns["model_version"] = pa.repeat(pa.scalar(spec.model_version, pa.int64()), rows)
    columns["input_snapshot_id"] = pa.repeat(pa.scalar(spec.input_snapshot_id, pa.int64()), rows)
    columns["features_snapshot_id"] = pa.repeat(pa.scalar(spec.features_snapshot_id, pa.int64()), rows)
    columns["run_id"] = pa.repeat(pa.scalar(spec.run_id, pa.string()), rows)
    return pa.table(columns)


def result_of(spec: BatchInferenceSpec, snapshot: Snapshot, seconds: float, written: bool) -> dict[str, Any]:
    rows = int(snapshot.properties.get("added-records", "0") or 0)
    return {
        "model_name": spec.model_name,
        "model_version": spec.model_version,
        "input_table": spec.input_table,
        "input_snapshot_id": spec.input_snapshot_id,
        "features_snapshot_id": int(snapshot.properties.get(FEATURES_SNAPSHOT, spec.features_snapshot_id)),
        "output_table": spec.output_table,
        "snapshot_id": snapshot.snapshot_id,
        "run_id": snapshot.properties.get(RUN_ID, spec.run_id),
        "written": written,
        "rows": rows,
        "seconds": round(seconds, 3),
    }


def fanout_child(index: int, payload: dict[str, Any]) -> None:
    """The fan-out handler (`pipelines.fanout`): the one child of a batch-inference run."""
    run_batch_inference(BatchInferenceSpec.model_validate(payload))
