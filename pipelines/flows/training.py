"""The training flow: ingest → validate → features → train → evaluate → register.

Every step is a named Prefect task over a plain function in `pipelines.training.steps`; the flow
adds retries on transient steps, run artifacts (a markdown summary and a table of gates) and
progress in the logs. A rejected batch fails the flow before anything downstream changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from pipelines.lake.ingest import BatchRejected
from pipelines.training import steps


def _transient(task_: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only what may succeed on a second try: never a rejected batch or a missing file."""
    try:
        state.result()
    except (BatchRejected, FileNotFoundError, steps.NoCuratedData):
        return False
    except Exception:
        return True
    return False


ingest = task(
    name="ingest-and-validate",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)(steps.ingest_step)
build_features = task(
    name="build-features",
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)(steps.feature_step)
prepare = task(name="prepare-training-set", cache_policy=NO_CACHE)(steps.prepare_step)
# A retried training job resumes from its last checkpoint, so a retry costs at most one epoch.
train = task(name="train", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)(steps.train_step)
evaluate = task(name="evaluate", cache_policy=NO_CACHE)(steps.evaluate_step)
register = task(name="register", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)(steps.register_step)
publish_metrics = task(name="publish-metrics", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)(
    steps.publish_metrics_step
)


@dataclass(frozen=True)
class TrainingSummary:
    environment: str
    model_name: str
    version: int
    status: str
    status_reason: str
    run_key: str
    metrics: dict[str, float]
    gates: list[dict[str, Any]]
    ingested: dict[str, Any] | None
    evaluation_report: str
    training_curves: str
    validation_report: str
    resumed_from_epoch: int
    epochs: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary_markdown(summary: TrainingSummary) -> str:
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in summary.metrics.items())
    return (
        f"# Training run `{summary.run_key}` on `{summary.environment}`\n\n"
        f"**{summary.model_name} v{summary.version}: {summary.status}** ({summary.status_reason}) "
        f"({summary.epochs} epochs on {summary.device})\n\n"
        f"| metric | value |\n|---|---|\n{metrics}\n\n"
        f"- evaluation report: {summary.evaluation_report}\n- training curves: {summary.training_curves}\n"
        + (f"- validation report: {summary.validation_report}\n" if summary.validation_report else "")
    )


@flow(name="training", log_prints=True)
def training_flow(
    env: str = "local", source: str | None = None, processes: int | None = None
) -> dict[str, Any]:
    """Train, evaluate and register a model on environment `env`, ingesting `source` first if given;
    `processes` data-parallel ranks on one machine override the environment's setting."""
    ctx = steps.open_environment(env)
    ingested = ingest(ctx, Path(source)) if source else None
    build = build_features(ctx)
    prepared = prepare(ctx, build, processes)
    result = train(ctx, prepared)
    evaluation = evaluate(ctx, prepared, result)
    version = register(ctx, prepared, result, evaluation)
    publish_metrics(ctx, version, evaluation)

    summary = TrainingSummary(
        environment=ctx.platform.environment,
        model_name=version.model_name,
        version=version.version,
        status=version.status.value,
        status_reason=version.status_reason,
        run_key=prepared.run_key,
        metrics=evaluation.overall,
        gates=evaluation.gates,
        ingested=ingested.to_dict() if ingested else None,
        evaluation_report=evaluation.report_uri,
        training_curves=result["curves_uri"],
        validation_report=ingested.report_uri if ingested else "",
        resumed_from_epoch=int(result.get("resumed_from_epoch", 0)),
        epochs=int(result["epochs"]),
        device=str(result["device"]),
    )
    create_markdown_artifact(
        markdown=_summary_markdown(summary), key="training-summary", description="Training run summary"
    )
    create_table_artifact(table=evaluation.gates, key="evaluation-gates", description="Evaluation gates")
    return summary.to_dict()
