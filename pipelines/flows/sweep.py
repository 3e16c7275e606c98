"""The sweep flow: features → training set → the global model → a model per segment times a
hyperparameter search, in chunks through the compute port → results table, report, tracking → one
segmented model (each segment's winner, the global model for the rest), gated and registered.

Thousands of trials are not thousands of Prefect tasks (measured: 10,000 trivial tasks take 94 s and
0.9 GB): the flow's tasks are its steps; the trials run inside chunks, as fan-out children.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.sweep import steps as sweep
from pipelines.sweep.segmented import register_segmented
from pipelines.training import steps

build_features = task(name="build-features", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)(
    steps.feature_step
)
prepare = task(name="prepare-training-set", cache_policy=NO_CACHE)(steps.prepare_step)
train_global = task(name="train-global-model", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)(
    steps.train_step
)
plan_sweep = task(name="plan-sweep", cache_policy=NO_CACHE)(sweep.plan_sweep)
# A retried run skips the chunks already done: a chunk is the unit of retry.
run_chunks = task(name="run-chunks", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)(
    sweep.run_chunks
)
gather = task(name="gather-results", cache_policy=NO_CACHE)(sweep.gather)
record = task(name="record-results", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)(sweep.record)
train_winners = task(name="train-winners", cache_policy=NO_CACHE)(sweep.train_winners)
evaluate = task(name="evaluate-winners", cache_policy=NO_CACHE)(sweep.evaluate_winners)
publish = task(name="report-and-track", cache_policy=NO_CACHE)(sweep.publish)
register = task(name="register-segmented-model", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)(
    register_segmented
)


@flow(name="sweep", log_prints=True)
def sweep_flow(env: str = "local", trials: int | None = None) -> dict[str, Any]:
    """Sweep the use case's search space in each segment; `trials` overrides its trials per segment."""
    ctx = steps.open_environment(env)
    spec = sweep.sweep_spec(ctx, trials)  # a bad search space fails here, before any work
    prepared = prepare(ctx, build_features(ctx))
    global_model = train_global(ctx, prepared)
    plan, plan_uri = plan_sweep(
        ctx,
        prepared,
        spec,
        ctx.settings.pipeline.sweep.chunk_trials,
        ctx.settings.pipeline.sweep.stack_trials,
    )
    run_chunks(ctx, plan, plan_uri)
    results = gather(ctx, plan)
    snapshot = record(ctx, plan, results, dict(prepared.lineage["tables"]))
    best = sweep.winners(results)
    members = train_winners(ctx, plan, best)
    evaluations = evaluate(ctx, plan, best, members, prepared.test_key, global_model["model_uri"])
    summary = publish(ctx, plan, results, best, evaluations, snapshot)
    version, reason = register(ctx, plan, prepared, global_model, best, members, summary)
    summary["registered"] = (
        f"{version.model_name} v{version.version} (segmented): {version.status.value}" if version else None
    )
    summary["registration_note"] = reason
    print(f"sweep {summary['sweep_key']}: {summary['trials']:,} trials; report: {summary['report']}")
    print(f"model: {summary['registered'] or 'not registered'}{f' ({reason})' if reason else ''}")
    create_markdown_artifact(
        key="sweep",
        markdown="# Sweep\n\n| | |\n|---|---|\n"
        + "".join(f"| {name} | {value} |\n" for name, value in summary.items()),
    )
    return summary
