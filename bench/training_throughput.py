"""Training data path: samples/s of the real training job vs a bare loop over in-memory tensors.

The real job reads the run's Parquet splits, encodes them, trains with per-epoch validation,
checkpoints and MLflow tracking. The bare loop runs the same network, optimiser, batch size and
number of epochs over tensors already in memory, and nothing else. The optimiser's first use in a
process imports torch's compiler stack (seconds, once per process, whatever trains): it is paid
before both and printed apart.

    python -m bench.training_throughput [--rows 200000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch
from torch import nn

from bench.common import prepared_training_run, report, scratch_environment


def _bare_loop(train, settings, epochs: int, build) -> float:  # type: ignore[no-untyped-def]
    network = build()
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_fn = nn.BCEWithLogitsLoss()
    network.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(train), settings.batch_size):
            index = order[start : start + settings.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(network(train.numeric[index], train.categorical[index]), train.labels[index])
            loss.backward()
            optimiser.step()
    return time.perf_counter() - started


def _measure(rows: int) -> dict[str, float]:
    """One side-by-side run in a fresh scratch environment: the job, then the bare loop."""
    from models.bundle import ModelBundle
    from pipelines.adapters.factory import read_uri
    from pipelines.training import job
    from pipelines.training.job import run_job
    from pipelines.training.run_spec import TrainingRunSpec
    from pipelines.training.split_file import SplitFile

    with scratch_environment() as root:
        ctx, prepared = prepared_training_run(root, rows)
        started = time.perf_counter()
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        optimiser_import = time.perf_counter() - started

        loop_seconds: list[float] = []
        job_fit = job.fit

        def timed_fit(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return job_fit(*args, **kwargs)
            finally:
                loop_seconds.append(time.perf_counter() - started)

        job.fit = timed_fit
        started = time.perf_counter()
        try:
            result = run_job(prepared.spec_uri)
        finally:
            job.fit = job_fit
        real_seconds = time.perf_counter() - started
        loop_time = sum(loop_seconds)

        spec = TrainingRunSpec.model_validate_json(read_uri(prepared.spec_uri))
        store = ctx.platform.artifacts
        split = SplitFile(
            store.get_file(spec.train_key, root / "train.parquet"),
            spec.numeric_features,
            spec.categorical_features,
            spec.label,
        )
        encoder, target = split.fit(spec.task)
        train = split.tensors(encoder, target)
        architecture = json.loads(store.get_bytes(spec.key("model/bundle.json")))["architecture"]
        epochs = int(result["epochs"])
        bare_seconds = _bare_loop(
            train, spec.training, epochs, lambda: ModelBundle.build(encoder, architecture, spec.label).network
        )

    samples = len(train) * epochs
    real_rate, bare_rate, loop_rate = samples / real_seconds, samples / bare_seconds, samples / loop_time
    return {
        "train_rows": len(train),
        "epochs": epochs,
        "real_samples_per_s": real_rate,
        "loop_samples_per_s": loop_rate,
        "bare_samples_per_s": bare_rate,
        "ratio": loop_rate / bare_rate,
        "job_ratio": real_rate / bare_rate,
        "real_s": real_seconds,
        "loop_s": loop_time,
        "bare_s": bare_seconds,
        "job_fixed_s": real_seconds - loop_time,
        "optimiser_first_use_s": optimiser_import,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2, help="side-by-side runs; medians are reported")
    args = parser.parse_args(argv)

    from models.threads import configure_threads

    runs = [_measure(args.rows) for _ in range(args.repeats)]
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    payload: dict[str, Any] = {
        "rows": args.rows,
        "threads": torch.get_num_threads(),
        **median,
        "ratios": [run["ratio"] for run in runs],
    }
    each = ", ".join(f"{run['ratio']:.2f}" for run in runs)
    report(
        "training_throughput",
        [
            ("train rows x epochs", f"{int(median['train_rows']):,} x {median['epochs']:g}"),
            ("threads", configure_threads().describe()),
            ("runs (medians below)", str(len(runs))),
            (
                "the job's training loop (train, validate, checkpoint, track each epoch)",
                f"{median['loop_samples_per_s']:,.0f} samples/s ({median['loop_s']:.1f} s)",
            ),
            (
                "bare loop over in-memory tensors",
                f"{median['bare_samples_per_s']:,.0f} samples/s ({median['bare_s']:.1f} s)",
            ),
            ("job's loop / bare loop (goal >= 0.8)", f"{median['ratio']:.2f} (each run: {each})"),
            (
                "whole job (also read, encode, open tracking, curves, bundle)",
                f"{median['real_samples_per_s']:,.0f} samples/s ({median['real_s']:.1f} s; "
                f"fixed part {median['job_fixed_s']:.1f} s)",
            ),
            ("whole job / bare loop", f"{median['job_ratio']:.2f}"),
            (
                "optimiser's first use in a process (paid before both)",
                f"{median['optimiser_first_use_s']:.1f} s",
            ),
        ],
        payload,
    )
    return payload


if __name__ == "__main__":
    main()
