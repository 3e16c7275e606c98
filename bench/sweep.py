"""The sweep engine against the bare fits of the same trials, and against today's job per trial.

In one scratch environment: example events ingested, features built, a training set prepared and a
sweep planned (every segment with enough rows x `--trials` settings). Then, side by side:
- engine: every chunk through the compute port, as the flow runs them (trials of one network
  shape stacked into one batched computation: `sweep.stack_trials`, the default);
- bare: the trials of a sample of segments (spread over the sizes) as plain `fit` calls on tensors
  prepared once per segment, one after another: the unstacked floor. Its rate is compared with the
  engine's training seconds on the same trials (the per-trial seconds in the chunks' results);
- job per trial: today's training job entry point (`run_job`: spec, tracking run, checkpoints,
  bundle) for a few trials spread over the segments, against what the engine charged those very
  trials;
- one Prefect task per trial: the same trials, each a task in one flow that reads and encodes its
  segment and fits (the fan-out the engine replaces), the API's start not counted.

    python -m bench.sweep [--rows 60000] [--trials 100] [--bare-segments 2] [--job-sample 8]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import report, scratch_environment


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument(
        "--trials",
        type=int,
        default=100,
        help="trial settings per segment (the 20,000-trial workload has 100)",
    )
    parser.add_argument("--bare-segments", type=int, default=2, help="segments whose trials are fitted bare")
    parser.add_argument(
        "--job-sample",
        type=int,
        default=8,
        help="trials timed through the job entry point, spread over the segments",
    )
    args = parser.parse_args(argv)

    import json

    import torch

    from models.device import pick_device
    from models.threads import configure_threads
    from models.train import fit, seed_everything
    from pipelines.adapters.factory import read_uri
    from pipelines.datagen.examples import generate_example
    from pipelines.sweep import steps as sweep
    from pipelines.sweep.job import _network, base_settings, segment_tensors
    from pipelines.training import steps
    from pipelines.training.job import run_job
    from pipelines.training.run_spec import TrainingRunSpec

    budget = configure_threads()
    with scratch_environment() as root:
        ctx = steps.open_environment("local")
        source = root / "incoming" / "bench.parquet"
        generate_example(ctx.usecase, args.rows, 7).to_parquet(source, index=False)
        steps.ingest_step(ctx, source)
        prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
        plan, plan_uri = sweep.plan_sweep(ctx, prepared, sweep.sweep_spec(ctx, args.trials), 100)
        store, device = ctx.platform.artifacts, pick_device()

        started = time.perf_counter()
        sweep.run_chunks(ctx, plan, plan_uri)
        engine = time.perf_counter() - started
        trials = plan.total_trials

        step = max(1, len(plan.segments) // max(1, args.bare_segments))
        sampled = list(range(0, len(plan.segments), step))[: args.bare_segments]
        position = {segment.name: number for number, segment in enumerate(plan.segments)}
        engine_trial_seconds = {  # what the engine charged each trial (its share of its stack's time)
            (position[row["segment"]], row["trial"]): row["seconds"]
            for number in range(len(plan.chunks))
            for row in json.loads(store.get_bytes(plan.result_key(number)))
        }
        engine_seconds = sum(engine_trial_seconds[(s, t)] for s in sampled for t in range(len(plan.trials)))
        started = time.perf_counter()
        prepared_segments = [segment_tensors(store, plan, plan.segments[s]) for s in sampled]
        bare_prepare = time.perf_counter() - started
        started = time.perf_counter()
        for tensors in prepared_segments:
            for parameters in plan.trials:
                settings = base_settings(plan).with_parameters(parameters)
                seed_everything(settings.seed)
                network = _network(plan, tensors, parameters)
                fit(network, tensors.train, tensors.valid, settings, device, None, task=plan.task)
        bare = time.perf_counter() - started
        bare_trials = len(sampled) * len(plan.trials)

        base = TrainingRunSpec.model_validate_json(read_uri(prepared.spec_uri))
        # Spread over the segments as the sweep's own trials are (each segment, the same trial count).
        sample = [
            (number * len(plan.segments) // args.job_sample, (number * 37) % len(plan.trials))
            for number in range(args.job_sample)
        ]
        engine_on_job_sample = sum(engine_trial_seconds[pair] for pair in sample)
        started = time.perf_counter()
        for number, (position_in_plan, trial) in enumerate(sample):
            segment = plan.segments[position_in_plan]
            parameters = plan.trials[trial]
            settings = base_settings(plan).with_parameters(parameters)
            training = base.training.model_copy(
                update={
                    "max_epochs": settings.max_epochs,
                    "batch_size": settings.batch_size,
                    "learning_rate": settings.learning_rate,
                    "weight_decay": settings.weight_decay,
                    "seed": settings.seed,
                }
            )
            spec = base.model_copy(
                update={
                    "run_key": f"bench-trial-{number}",
                    "run_prefix": f"bench/trial-{number}",
                    "train_key": segment.train_key,
                    "valid_key": segment.valid_key,
                    "training": training,
                }
            )
            run_job(store.put_bytes(f"bench/trial-{number}/run_spec.json", spec.model_dump_json().encode()))
        job_seconds = time.perf_counter() - started
        job_per_trial = job_seconds / len(sample)
        task_per_trial, api_start = _prefect_task_per_trial(plan, store, device, sample)

    rates = {
        "engine": trials / engine,
        "engine_on_sample": bare_trials / engine_seconds,
        "bare": bare_trials / bare,
        "job": 1 / job_per_trial,
        "prefect_task": 1 / task_per_trial,
    }
    lines = [
        ("threads", budget.describe()),
        (
            "sweep",
            f"{len(plan.segments)} segments x {len(plan.trials)} settings = {trials} trials "
            f"in {len(plan.chunks)} chunks ({args.rows:,} rows; {len(plan.fallback)} segments on the global model)",
        ),
        ("engine (chunks through the compute port)", f"{engine:.1f} s, {rates['engine']:.2f} trials/s"),
        (
            f"engine, training the {bare_trials} trials of {len(sampled)} sampled segments",
            f"{engine_seconds:.1f} s, {rates['engine_on_sample']:.2f} trials/s",
        ),
        (
            "bare fits of the same trials, one after another",
            f"{bare:.1f} s (+{bare_prepare:.1f} s preparing), {rates['bare']:.2f} trials/s",
        ),
        (
            "today's job entry point per trial",
            f"{job_per_trial:.2f} s per trial over {len(sample)} trials spread over the segments "
            f"(the engine: {engine_on_job_sample / len(sample):.3f} s for the same trials)",
        ),
        (
            "one Prefect task per trial (the trial's data read and encoded in its task, then fitted)",
            f"{task_per_trial:.2f} s per trial over the same {len(sample)} trials, in one flow "
            f"(the API's start before it, {api_start:.1f} s, not counted)",
        ),
        (
            "engine / bare on the same trials (stacked / looped)",
            f"{rates['engine_on_sample'] / rates['bare']:.2f}x (goal >= 0.8)",
        ),
        (
            "engine / job per trial on the same trials",
            f"{job_seconds / engine_on_job_sample:.1f}x (goal >= 50x)",
        ),
        (
            "engine / one Prefect task per trial on the same trials",
            f"{task_per_trial * len(sample) / engine_on_job_sample:.1f}x",
        ),
        ("20,000 trials at the engine's rate", f"{20_000 / rates['engine'] / 60:.0f} min on this machine"),
    ]
    payload = {
        "rates": rates,
        "engine_over_job": job_seconds / engine_on_job_sample,
        "engine_over_prefect_task": task_per_trial * len(sample) / engine_on_job_sample,
        "trials": trials,
        "torch": torch.__version__,
    }
    report("sweep", lines, payload)
    return rates


def _prefect_task_per_trial(
    plan: Any, store: Any, device: Any, sample: list[tuple[int, int]]
) -> tuple[float, float]:
    """Seconds per trial when each trial is its own Prefect task (the fan-out the engine replaces),
    in one flow against the API `mlops run` would use, and the seconds that API took to start."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from mlops.flow_api import ensure_flow_api
    from models.train import fit, seed_everything
    from pipelines.sweep.job import _network, base_settings, segment_tensors

    started = time.perf_counter()
    ensure_flow_api("local")

    @task(name="bench-sweep-trial", cache_policy=NO_CACHE)
    def one_trial(position: int, trial: int) -> None:
        tensors = segment_tensors(store, plan, plan.segments[position])
        settings = base_settings(plan).with_parameters(plan.trials[trial])
        seed_everything(settings.seed)
        network = _network(plan, tensors, plan.trials[trial])
        fit(network, tensors.train, tensors.valid, settings, device, None, task=plan.task)

    @flow(name="bench-sweep-tasks")
    def trials(pairs: list[tuple[int, int]]) -> None:
        for position, trial in pairs:
            one_trial(position, trial)

    trials(sample[:1])  # the API's start and the engines' first use, not timed
    api_start = time.perf_counter() - started
    started = time.perf_counter()
    trials(sample)
    return (time.perf_counter() - started) / len(sample), api_start


if __name__ == "__main__":
    main()
