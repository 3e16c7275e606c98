"""An experiment's record and the endpoint state it sets: the live champion and a challenger on a
sticky share of the entities (`experiments/<model>.json` in the artifact store). The deployer
applies the split: the local server's state file, or two SageMaker production variants."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from pipelines.deployment.endpoint import EndpointState, ServingVariant, read_state
from pipelines.errors import ExperimentError
from pipelines.experiments.readout import DEFAULT_EFFECT, METRICS
from pipelines.ports import ApprovalStatus, ArtifactStore, DeployerPort, RegistryPort


@dataclass(frozen=True)
class Experiment:
    model_name: str
    champion: int
    challenger: int
    share: float  # of the entities the challenger serves
    metric: str  # auc | conversion
    better: str  # higher | lower
    effect: float  # the minimum detectable effect the power calculation plans for
    started_at: str
    status: str = "running"  # running | stopped
    decision: str = ""
    stopped_at: str = ""

    @property
    def arms(self) -> tuple[str, str]:
        """The variant names of champion and challenger, as the endpoint and the capture name them."""
        return f"v{self.champion}", f"v{self.challenger}"


def experiment_key(model_name: str) -> str:
    return f"experiments/{model_name}.json"


def read_experiment(store: ArtifactStore, model_name: str) -> Experiment | None:
    key = experiment_key(model_name)
    return Experiment(**json.loads(store.get_bytes(key))) if store.exists(key) else None


def start_experiment(
    deployer: DeployerPort,
    store: ArtifactStore,
    registry: RegistryPort,
    model_name: str,
    challenger: int,
    share: float = 0.5,
    metric: str = "auc",
    better: str = "higher",
    effect: float | None = None,
) -> Experiment:
    """Put `challenger` on `share` of the entities beside the live champion; one experiment per model."""
    if not 0 < share < 1:
        raise ExperimentError(f"--share {share}: must be between 0 and 1 (exclusive)")
    if metric not in METRICS:
        raise ExperimentError(f"--metric {metric!r}: choose from {', '.join(METRICS)}")
    running = read_experiment(store, model_name)
    if running is not None and running.status == "running":
        raise ExperimentError(
            f"{model_name} already has a running experiment (v{running.champion} vs v{running.challenger}, "
            f"started {running.started_at}): stop it first (mlops experiment stop)"
        )
    champion = read_state(store, model_name).live_version()
    if champion is None:
        raise ExperimentError(f"no version of {model_name} is live: deploy a champion first (mlops deploy)")
    try:
        version = registry.get(model_name, challenger)
    except Exception as exc:
        raise ExperimentError(f"--challenger {challenger}: {model_name} has no version {challenger}") from exc
    if challenger == champion:
        raise ExperimentError(f"--challenger {challenger}: v{challenger} is the live champion already")
    if version.status != ApprovalStatus.APPROVED:
        raise ExperimentError(
            f"--challenger {challenger}: v{challenger} is {version.status.value}; only approved versions take traffic"
        )
    experiment = Experiment(
        model_name,
        champion,
        challenger,
        share,
        metric,
        better,
        effect or DEFAULT_EFFECT[metric],
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    deployer.route(
        EndpointState(
            model_name,
            [
                ServingVariant(experiment.arms[0], champion, 1 - share),
                ServingVariant(experiment.arms[1], challenger, share),
            ],
            assignment="sticky",
        ),
        registry,
        store,
    )
    store.put_bytes(experiment_key(model_name), json.dumps(asdict(experiment), indent=2).encode())
    return experiment


def stop_experiment(
    deployer: DeployerPort, store: ArtifactStore, registry: RegistryPort, model_name: str, decision: str
) -> Experiment:
    """End the running experiment: the champion takes all traffic again (a promotion then goes
    through the guarded deployment)."""
    running = read_experiment(store, model_name)
    if running is None or running.status != "running":
        raise ExperimentError(f"{model_name} has no running experiment (mlops experiment start)")
    deployer.route(
        EndpointState(model_name, [ServingVariant(running.arms[0], running.champion, 1.0)]), registry, store
    )
    stopped = replace(
        running,
        status="stopped",
        decision=decision,
        stopped_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    store.put_bytes(experiment_key(model_name), json.dumps(asdict(stopped), indent=2).encode())
    return stopped
