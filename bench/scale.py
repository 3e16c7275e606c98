"""The pipeline at scale: wall time and peak memory of each step at 1 M, 5 M and 10 M rows.

Each size runs in a fresh process (so one size's memory does not count against the next), after the
example data is generated in another process (past 10 M rows, the example generator's limit, as
blocks of 10 M rows of other customers over the same period): ingest, features, training-set
preparation, training and evaluation, on the local environment, with the thread settings printed. Peak memory is the
process's peak resident set after each step (it only grows, so the step that raised it is the one
whose peak differs from the step before).

    python -m bench.scale [--rows 1000000,5000000,10000000]      # and 50000000 when the disk allows
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import child_json, peak_rss_mb, report, resident_mb

STEPS = ("ingest", "features", "prepare", "train", "evaluate")


def _generate(rows: int, path: Path) -> None:
    """`rows` example events. Past the generator's limit, blocks of its largest size with seeds of
    their own, whose keys and entities are suffixed by block: more customers over the same period
    (the first block is the data of that size itself). Written block by block."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlops.settings import load_settings
    from pipelines.datagen.examples import MAX_ROWS, generate_example
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())
    renamed = [*usecase.dataset.primary_key, usecase.dataset.entity_key]
    writer: pq.ParquetWriter | None = None
    for block, start in enumerate(range(0, rows, MAX_ROWS)):
        part = pa.Table.from_pandas(
            generate_example(usecase, min(MAX_ROWS, rows - start), 7 + block), preserve_index=False
        )
        for name in renamed if block else ():
            index = part.schema.get_field_index(name)
            suffixed = pc.binary_join_element_wise(part.column(name).cast(pa.string()), f"b{block}", "-")
            part = part.set_column(index, name, suffixed)
        if writer is None:
            writer = pq.ParquetWriter(path, part.schema)
        writer.write_table(part.cast(writer.schema))
        del part
    if writer is not None:
        writer.close()


def _run_steps(source: Path) -> dict[str, Any]:
    """Every step on a scratch environment: wall seconds and peak RSS after each."""
    from bench.common import scratch_environment
    from models.threads import configure_threads
    from pipelines.training import steps

    budget = configure_threads()
    measured: dict[str, Any] = {"threads": budget.describe(), "steps": {}}
    with scratch_environment():
        ctx = steps.open_environment("local")
        baseline = peak_rss_mb()
        state: dict[str, Any] = {}
        actions = {
            "ingest": lambda: steps.ingest_step(ctx, source),
            "features": lambda: state.__setitem__("build", steps.feature_step(ctx)),
            "prepare": lambda: state.__setitem__("prepared", steps.prepare_step(ctx, state["build"])),
            "train": lambda: state.__setitem__("result", steps.train_step(ctx, state["prepared"])),
            "evaluate": lambda: steps.evaluate_step(ctx, state["prepared"], state["result"]),
        }
        for name in STEPS:
            started = time.perf_counter()
            actions[name]()
            measured["steps"][name] = {
                "seconds": time.perf_counter() - started,
                "peak_mb": peak_rss_mb(),
                "held_mb": resident_mb(),  # what the step left resident for the steps after it
            }
            print(f"  {name}: {_step_line(measured['steps'][name])}", file=sys.stderr, flush=True)
        # Early stopping picks the epochs, so training's wall per row is not its cost per row.
        measured["training"] = {
            "train_rows": state["prepared"].rows["train"],
            "epochs": state["result"]["epochs"],
        }
        measured["baseline_mb"] = baseline
    return measured


def _step_line(step: dict[str, float]) -> str:
    held = f", {step['held_mb'] / 1024:.2f} GB held after" if "held_mb" in step else ""
    return f"{step['seconds']:.1f} s / {step['peak_mb'] / 1024:.2f} GB{held}"


def _total_seconds(run: dict[str, Any]) -> float:
    return float(sum(step["seconds"] for step in run["steps"].values()))


def _size_line(run: dict[str, Any]) -> str:
    """One size's total wall, peak and each step's wall and peak."""
    total = _total_seconds(run)
    peak = max(step["peak_mb"] for step in run["steps"].values()) / 1024
    per_step = ", ".join(f"{name} {_step_line(step)}" for name, step in run["steps"].items())
    return f"{total:.0f} s, peak {peak:.2f} GB ({per_step})"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000,5000000,10000000")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--steps", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:  # child process: write the example data
        rows, path = args.generate.split(":", 1)
        _generate(int(rows), Path(path))
        print(json.dumps({"ok": True}))
        return {}
    if args.steps:  # child process: run the pipeline's steps on the file
        print(json.dumps(_run_steps(Path(args.steps))))
        return {}

    sizes = [int(n) for n in args.rows.split(",")]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-scale-") as scratch:
        for rows in sizes:
            path = Path(scratch) / f"events-{rows}.parquet"
            child_json("bench.scale", "--generate", f"{rows}:{path}")
            results[str(rows)] = child_json("bench.scale", "--steps", str(path), stderr_through=True)
            path.unlink()
            print(f"{rows:,} rows done: {_size_line(results[str(rows)])}", file=sys.stderr, flush=True)
    lines: list[tuple[str, str]] = [("threads", next(iter(results.values()))["threads"])]
    smallest = sizes[0]
    for rows in sizes:
        run = results[str(rows)]
        lines.append((f"{rows:,} rows", _size_line(run)))
        trained = run.get("training")
        if trained:
            samples = trained["train_rows"] * trained["epochs"]
            rate = samples / run["steps"]["train"]["seconds"]
            lines.append(
                (
                    "  training",
                    f"{trained['train_rows']:,} rows x {trained['epochs']} epochs, {rate:,.0f} samples/s "
                    "(fixed costs included)",
                )
            )
        if rows != smallest:
            per_row = _total_seconds(run) / rows
            base = _total_seconds(results[str(smallest)]) / smallest
            lines.append(
                (
                    f"  wall per row vs {smallest:,}",
                    f"{per_row / base:.2f}x (1.00 = linear)",
                )
            )
    report("scale", lines, {"sizes": sizes, "results": results})
    return results


if __name__ == "__main__":
    main()
