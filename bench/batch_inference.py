"""Batch inference at 1 M and 10 M rows: throughput against the raw forward pass, and peak memory.

For each size, one process writes a lake (a curated table of keys and a feature table of the churn
use case's features, N rows each, written chunk by chunk) and a model bundle with its ONNX file; a
second, fresh process runs the batch-inference job on it (lake scan, streamed point-in-time join,
scoring, one Iceberg commit) and reports its peak resident memory, then times the raw forward
pass, the torch model and the ONNX file, over 1 M of the same joined rows held in memory. Ratios
are measured side by side in that process, so the machine's load falls on both alike.

    python -m bench.batch_inference [--rows 1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import child_json, peak_rss_mb, report

BASE_ROWS = 100_000  # generated once, repeated with other entity and event ids up to the size
RAW_ROWS = 1_000_000


def _write(root: Path, rows: int) -> None:
    """The lake and the model of one size (child process)."""
    import pyarrow as pa

    from mlops.paths import PACKAGE_ROOT
    from models.bundle import ModelBundle, Target
    from models.encoding import FeatureEncoder
    from pipelines.datagen.examples import generate_example
    from pipelines.features.compute import FEATURE_TIME, compute_window_features
    from pipelines.onnx_model import model_files
    from pipelines.platform import lake_for
    from pipelines.usecase import load_usecase

    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "churn.yaml")
    dataset = usecase.dataset
    events = generate_example(usecase, BASE_ROWS, 3)
    features = compute_window_features(events, usecase)
    encoder = FeatureEncoder.fit(features, usecase.numeric_features(), usecase.categorical_vocabularies())
    bundle = ModelBundle.build(
        encoder, {"embedding_dim": 8, "hidden_sizes": [64, 32], "dropout": 0.1}, dataset.label, Target()
    )
    model = root / "model"
    model.mkdir()
    for name, data in {**bundle.to_files(), **model_files(bundle)}.items():
        (model / name).write_bytes(data)

    keys = events[[*dataset.primary_key, dataset.entity_key, dataset.event_time]]
    feature_rows = features[[dataset.entity_key, FEATURE_TIME, *usecase.feature_names()]]
    (root / "warehouse").mkdir()
    lake, _ = lake_for(_lake_section(root), None)

    def copies(frame: Any, key_columns: list[str]) -> Iterator[pa.Table]:
        for copy in range((rows + BASE_ROWS - 1) // BASE_ROWS):
            part = frame.head(min(BASE_ROWS, rows - copy * BASE_ROWS)).copy()
            for column in key_columns:
                part[column] = part[column].astype(str) + f"-{copy}"
            yield pa.Table.from_pandas(part, preserve_index=False)

    lake.append_batches("curated.events", copies(keys, [*dataset.primary_key, dataset.entity_key]), {})
    lake.append_batches("features.view", copies(feature_rows, [dataset.entity_key]), {})


def _lake_section(root: Path) -> Any:
    from mlops.contract import LocalLake

    return LocalLake(
        warehouse=str(root / "warehouse"),
        catalog_uri=f"sqlite:///{root / 'catalog.db'}",
        quarantine=str(root / "quarantine"),
    )


def _score(root: Path) -> dict[str, Any]:
    """Run the job on the lake of `root`, then time the raw forward pass (child process)."""
    import numpy as np
    import pyarrow as pa

    from mlops.contract import LocalArtifacts
    from mlops.paths import PACKAGE_ROOT
    from models.threads import configure_threads
    from pipelines.inference.job import BatchInferenceSpec, feature_arrays, run_batch_inference
    from pipelines.onnx_model import load_for_scoring
    from pipelines.platform import lake_for
    from pipelines.usecase import load_usecase

    budget = configure_threads()
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "churn.yaml")
    dataset = usecase.dataset
    lake, _ = lake_for(_lake_section(root), None)
    curated = lake.current_snapshot("curated.events")
    features = lake.current_snapshot("features.view")
    assert curated is not None and features is not None
    spec = BatchInferenceSpec(
        run_id="bench",
        model_name="bench-model",
        model_version=1,
        model_uri=str(root / "model"),
        input_table="curated.events",
        input_snapshot_id=curated.snapshot_id,
        input_rows=int(curated.properties.get("total-records", 0)),
        key_columns=[*dataset.primary_key, dataset.entity_key, dataset.event_time],
        entity_key=dataset.entity_key,
        event_time=dataset.event_time,
        features_table="features.view",
        features_snapshot_id=features.snapshot_id,
        ttl_days=usecase.features.ttl_days,
        output_table="predictions.bench_model",
        lake=_lake_section(root),
        artifacts=LocalArtifacts(root=str(root / "artifacts")),
        result_key="result.json",
        chunk_rows=200_000,
        memory_limit="1GB",
    )
    baseline = peak_rss_mb()
    started = time.perf_counter()
    result = run_batch_inference(spec)
    job_seconds = time.perf_counter() - started
    job_peak = peak_rss_mb()

    bundle, scorer = load_for_scoring(str(root / "model"))
    numeric, categorical = list(bundle.encoder.numeric), list(bundle.encoder.categorical)
    sample = lake.scan("features.view", [*numeric, *categorical], features.snapshot_id)
    batches, held = [], 0
    for batch in sample:
        batches.append(batch)
        held += batch.num_rows
        if held >= RAW_ROWS:
            break
    in_memory = pa.Table.from_batches(batches).slice(0, RAW_ROWS).combine_chunks().to_batches()[0]
    arrays = feature_arrays(in_memory, numeric, categorical)
    timings = {}
    for name, model in (("torch", bundle), ("onnx", scorer)):
        started = time.perf_counter()
        for start in range(0, in_memory.num_rows, spec.chunk_rows):
            end = start + spec.chunk_rows
            categories: dict[str, Any] = {k: v[start:end] for k, v in arrays[1].items()}
            model.predict_arrays(arrays[0][start:end], categories)
        timings[name] = in_memory.num_rows / (time.perf_counter() - started)
    return {
        "threads": budget.describe(),
        "rows": result["rows"],
        "job_seconds": job_seconds,
        "job_rows_per_second": result["rows"] / job_seconds,
        "raw_torch_rows_per_second": timings["torch"],
        "raw_onnx_rows_per_second": timings["onnx"],
        "baseline_mb": baseline,
        "job_peak_mb": job_peak,
        "finite_scores": bool(
            np.isfinite(lake.read("predictions.bench_model", columns=["score"]).column(0).to_numpy()).all()
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--write", help=argparse.SUPPRESS)
    parser.add_argument("--score", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        rows, root = args.write.split(":", 1)
        _write(Path(root), int(rows))
        print(json.dumps({"ok": True}))
        return {}
    if args.score:
        print(json.dumps(_score(Path(args.score))))
        return {}

    sizes = [int(n) for n in args.rows.split(",")]
    results: dict[str, Any] = {}
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="mlops-batch-inference-") as root:
            started = time.perf_counter()
            child_json("bench.batch_inference", "--write", f"{rows}:{root}")
            written = time.perf_counter() - started
            results[str(rows)] = {
                **child_json("bench.batch_inference", "--score", root),
                "lake_written_seconds": written,
            }
    lines: list[tuple[str, str]] = [("threads", next(iter(results.values()))["threads"])]
    for rows in sizes:
        run = results[str(rows)]
        lines += [
            (
                f"{rows:,} rows",
                f"{run['job_seconds']:.1f} s, {run['job_rows_per_second']:,.0f} rows/s (lake read, "
                f"point-in-time join, score, one commit); peak {run['job_peak_mb'] / 1024:.2f} GB "
                f"(process before the job {run['baseline_mb'] / 1024:.2f} GB)",
            ),
            (
                "  vs raw forward in memory",
                f"{run['job_rows_per_second'] / run['raw_torch_rows_per_second']:.2f}x of torch "
                f"({run['raw_torch_rows_per_second']:,.0f} rows/s), "
                f"{run['job_rows_per_second'] / run['raw_onnx_rows_per_second']:.2f}x of the ONNX file "
                f"({run['raw_onnx_rows_per_second']:,.0f} rows/s) (target >= 0.5)",
            ),
        ]
    if len(sizes) > 1:
        small, large = results[str(sizes[0])], results[str(sizes[-1])]
        lines.append(
            (
                f"peak memory {sizes[-1]:,} / {sizes[0]:,}",
                f"{large['job_peak_mb'] / small['job_peak_mb']:.2f}x for {sizes[-1] / sizes[0]:.0f}x the rows "
                "(1.00 = flat)",
            )
        )
    report("batch_inference", lines, {"sizes": sizes, "results": results})
    return results


if __name__ == "__main__":
    main()
