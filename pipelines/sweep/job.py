"""A sweep chunk: one segment's trials in one process (`pipelines.fanout` calls `sweep_chunk`).

The segment's splits are read and encoded once; every trial then trains on the same tensors. The
chunk's results are written once, at its end, so a chunk is done or not: a rerun skips it.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from models.bundle import ModelBundle, Target
from models.device import pick_device
from models.encoding import FeatureEncoder
from models.sweep import TrialOutcome, TrialSettings, run_trial, run_trials
from models.threads import configure_threads
from models.train import TensorSplit
from pipelines.adapters.factory import artifact_store, read_uri
from pipelines.ports import ArtifactStore
from pipelines.progress import Progress
from pipelines.sweep.plan import SegmentData, SweepPlan
from pipelines.training.split_file import split_tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentTensors:
    encoder: FeatureEncoder
    target: Target
    train: TensorSplit
    valid: TensorSplit


def _split(store: ArtifactStore, key: str, plan: SweepPlan) -> pd.DataFrame:
    columns = list(dict.fromkeys([*plan.numeric_features, *plan.categorical_features, plan.label]))
    return pd.read_parquet(io.BytesIO(store.get_bytes(key)), columns=columns)


def _encoding(plan: SweepPlan, train_frame: pd.DataFrame) -> tuple[FeatureEncoder, Target]:
    """A segment's encoder and target, fitted on its training rows as a standalone model fits them."""
    encoder = FeatureEncoder.fit(train_frame, plan.numeric_features, plan.categorical_features)
    return encoder, Target.fit(plan.task, train_frame[plan.label].to_numpy(dtype="float64"))


def segment_tensors(store: ArtifactStore, plan: SweepPlan, segment: SegmentData) -> SegmentTensors:
    """A segment's splits, encoded as a standalone model of that segment encodes them."""
    train_frame, valid_frame = _split(store, segment.train_key, plan), _split(store, segment.valid_key, plan)
    encoder, target = _encoding(plan, train_frame)
    return SegmentTensors(
        encoder,
        target,
        split_tensors(encoder, train_frame, plan.label, target),
        split_tensors(encoder, valid_frame, plan.label, target),
    )


def architecture_for(plan: SweepPlan, parameters: dict[str, Any]) -> dict[str, Any]:
    """The network shape of a trial: its width and depth, else the environment's hidden sizes."""
    hidden = list(plan.architecture["hidden_sizes"])
    if "hidden_width" in parameters or "depth" in parameters:
        width = int(parameters.get("hidden_width", hidden[0] if hidden else 32))
        hidden = [width] * int(parameters.get("depth", len(hidden) or 1))
    return {**plan.architecture, "hidden_sizes": hidden}


def _bundle(
    plan: SweepPlan, encoder: FeatureEncoder, target: Target, parameters: dict[str, Any]
) -> ModelBundle:
    return ModelBundle.build(encoder, architecture_for(plan, parameters), plan.label, target)


def _network(plan: SweepPlan, tensors: SegmentTensors, parameters: dict[str, Any]) -> nn.Module:
    return _bundle(plan, tensors.encoder, tensors.target, parameters).network


def base_settings(plan: SweepPlan) -> TrialSettings:
    return TrialSettings(**plan.base)


def winner_bundle(
    plan: SweepPlan, store: ArtifactStore, segment: SegmentData, trial: int, chunk: int
) -> ModelBundle:
    """A segment's winning trial as a bundle: the weights its chunk kept, or (for chunks run before
    chunks kept them) trained again, deterministically to the same weights."""
    key = plan.best_key(chunk)
    if store.exists(key):
        kept = torch.load(io.BytesIO(store.get_bytes(key)), map_location="cpu", weights_only=True)
        if kept["trial"] == trial:
            if "encoder" in kept:  # the chunk's own encoding, so its training rows are not read again
                encoder, target = FeatureEncoder.from_dict(kept["encoder"]), Target(**kept["target"])
            else:  # kept before chunks stored their encoding: fitted again, to the same values
                encoder, target = _encoding(plan, _split(store, segment.train_key, plan))
            bundle = _bundle(plan, encoder, target, plan.trials[trial])
            bundle.network.load_state_dict(kept["state"])
            bundle.network.eval()
            return bundle
    return train_winner(plan, store, segment, trial)


def train_winner(plan: SweepPlan, store: ArtifactStore, segment: SegmentData, trial: int) -> ModelBundle:
    """Train a segment's winning trial again (deterministic: the same weights) into a bundle."""
    tensors = segment_tensors(store, plan, segment)
    parameters = plan.trials[trial]
    built: list[ModelBundle] = []

    def network() -> nn.Module:  # built after seeding, as in its chunk; trained in place
        built.append(_bundle(plan, tensors.encoder, tensors.target, parameters))
        return built[-1].network

    run_trial(
        network,
        tensors.train,
        tensors.valid,
        base_settings(plan).with_parameters(parameters),
        pick_device(),
        plan.task,
    )
    return built[-1]


def result_rows(plan: SweepPlan, chunk: int, outcomes: list[TrialOutcome]) -> list[dict[str, Any]]:
    """One row per trial: segment, trial, its parameters, its metrics, its chunk."""
    segment = plan.segments[plan.chunks[chunk].segment]
    return [
        {
            "segment": segment.name,
            "chunk": chunk,
            "train_rows": segment.train_rows,
            **{f"param_{name}": value for name, value in plan.trials[o.trial].items()},
            **asdict(o),
        }
        for o in outcomes
    ]


def sweep_chunk(index: int, payload: dict[str, Any]) -> None:
    """Run chunk `index` of the sweep planned at payload["plan_uri"], unless its results exist."""
    plan = SweepPlan.model_validate_json(read_uri(payload["plan_uri"]))
    store = artifact_store(plan.artifacts)
    key = plan.result_key(index)
    if store.exists(key):
        log.info("sweep chunk %d already done", index)
        return
    configure_threads()
    chunk = plan.chunks[index]
    segment = plan.segments[chunk.segment]
    tensors = segment_tensors(store, plan, segment)
    progress = Progress(chunk.trials, "trials", log)
    trials = [(t, plan.trials[t]) for t in range(chunk.first_trial, chunk.first_trial + chunk.trials)]
    best = BestTrial(tensors.encoder, tensors.target)
    outcomes = run_trials(
        lambda parameters: _network(plan, tensors, parameters),
        tensors.train,
        tensors.valid,
        trials,
        base_settings(plan),
        pick_device(),
        plan.task,
        on_trial=lambda _: progress.advance(1),
        on_model=best.offer,
        stacked=plan.stacked,
    )
    if best.state is not None:  # the winner's weights, so picking it never trains it again
        store.put_bytes(plan.best_key(index), best.payload())
    store.put_bytes(key, json.dumps(result_rows(plan, index, outcomes)).encode())


class BestTrial:
    """The best trial of a chunk so far (by validation score; the lower index on a tie, as
    `winners` picks) and a copy of its weights, kept with the segment's encoding."""

    def __init__(self, encoder: FeatureEncoder, target: Target) -> None:
        self.trial, self.score = -1, -math.inf
        self.state: dict[str, torch.Tensor] | None = None
        self.encoder, self.target = encoder, target

    def offer(self, outcome: TrialOutcome, model: nn.Module) -> None:
        if math.isfinite(outcome.score) and outcome.score > self.score:
            self.trial, self.score = outcome.trial, outcome.score
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def payload(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(
            {
                "trial": self.trial,
                "state": self.state,
                "encoder": self.encoder.to_dict(),
                "target": asdict(self.target),
            },
            buffer,
        )
        return buffer.getvalue()
