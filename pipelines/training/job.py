"""The training job's entry point: `python -m pipelines.training.job SPEC_URI`.

It is what the training container runs (AWS Batch in the cloud, the local compute adapter
in-process on a laptop). It reads the run spec, trains with checkpoints, and writes the model
bundle, curves and `result.json` (written last: its presence means the run is complete).

Started by torchrun (WORLD_SIZE > 1), every rank runs it: the process group is NCCL on CUDA and
gloo on CPU, each rank trains on its share of every global batch, and only rank 0 tracks in
MLflow, writes checkpoints, the bundle and the result.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from models.bundle import ModelBundle
from models.curves import training_curves_png
from models.device import pick_device, uses_mixed_precision
from models.metrics import SELECTION_METRIC
from models.threads import configure_threads
from models.train import EpochStats, Ranks, TensorSplit, fit, seed_everything
from pipelines.adapters.factory import artifact_store, read_uri, tracker
from pipelines.faults import fault_point
from pipelines.onnx_model import model_files
from pipelines.ports import ArtifactStore
from pipelines.training.bundles import load_bundle
from pipelines.training.run_spec import RESULT_FILE, TrainingRunSpec, architecture_of
from pipelines.training.split_file import EncodedSplit, SplitFile

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoints/last.pt"


class StoreCheckpointer:
    """Keeps the checkpoint in the artifact store (atomic writes), so a restarted job finds it."""

    def __init__(self, store: ArtifactStore, key: str) -> None:
        self.store, self.key = store, key

    def save(self, payload: bytes) -> None:
        self.store.put_bytes(self.key, payload)

    def load(self) -> bytes | None:
        return self.store.get_bytes(self.key) if self.store.exists(self.key) else None


def _join_process_group() -> torch.device:
    """Join torchrun's process group when there is one; the device this rank trains on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return pick_device()
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def _load_data(
    spec: TrainingRunSpec, store: ArtifactStore, scratch: Path
) -> tuple[ModelBundle, TensorSplit, EncodedSplit]:
    """The network to train, the training split as tensors streamed from a local copy of its file,
    and the validation split encoded from its copy each time it is scored. The network has random
    weights and an encoding fitted on the training split, or, for a warm start, the champion's
    weights and encoding (the weights were learned against it)."""
    train_file, valid_file = (
        SplitFile(
            store.get_file(key, scratch / f"{name}.parquet"),
            spec.numeric_features,
            spec.categorical_features,
            spec.label,
        )
        for name, key in (("train", spec.train_key), ("valid", spec.valid_key))
    )
    seed_everything(spec.training.seed)  # the initial weights come from the seeded generator too
    architecture = architecture_of(spec.training)
    champion = load_bundle(spec.warm_start_uri) if spec.warm_start_uri is not None else None
    encoder, target = train_file.fit(spec.task, champion.encoder if champion else None)
    if champion is not None:  # the champion's target scaling too; the constant baseline is this split's
        target = replace(champion.target, baseline=target.baseline)
    bundle = ModelBundle.build(encoder, architecture, spec.label, target)
    if champion is not None:
        bundle.network.load_state_dict(champion.network.state_dict())
    return bundle, train_file.tensors(encoder, target), valid_file.encoded(encoder, target)


def run_job(spec_uri: str) -> dict[str, Any]:
    """Run (or resume, or return the result of) the training run described at `spec_uri`.

    Under torchrun every rank calls this; ranks other than 0 return an empty dict."""
    device = _join_process_group()
    try:
        return _run(spec_uri, device, Ranks.current())
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(spec_uri: str, device: torch.device, ranks: Ranks) -> dict[str, Any]:
    spec = TrainingRunSpec.model_validate_json(read_uri(spec_uri))
    store = artifact_store(spec.artifacts)
    if store.exists(spec.key(RESULT_FILE)):
        log.info("run %s already complete; returning its result", spec.run_key)
        result: dict[str, Any] = json.loads(store.get_bytes(spec.key(RESULT_FILE)))
        return result

    # The validation split is read from its local copy every epoch: the copies live as long as training.
    with tempfile.TemporaryDirectory(prefix="mlops-training-data-") as scratch:
        return _train(spec, store, Path(scratch), device, ranks)


def _train(
    spec: TrainingRunSpec, store: ArtifactStore, scratch: Path, device: torch.device, ranks: Ranks
) -> dict[str, Any]:
    bundle, train, valid = _load_data(spec, store, scratch)
    score_name = SELECTION_METRIC[spec.task]
    checkpointer = StoreCheckpointer(store, spec.key(CHECKPOINT_FILE))
    resumable = checkpointer.load()
    previous_run_id = None
    budget = configure_threads()
    threads, threads_note = budget.threads, budget.describe()
    if resumable is not None:
        saved = torch.load(io.BytesIO(resumable), map_location="cpu", weights_only=False)["extra"]
        previous_run_id = saved.get("tracking_run_id")
        # CPU results depend on the thread count: a resumed run keeps the one it started with.
        threads = int(saved.get("torch_threads", threads))
        if threads != budget.threads:
            torch.set_num_threads(threads)
            threads_note = f"{threads} thread(s), kept from the run's checkpoint"
    if not ranks.is_main:  # a worker rank: train its share; rank 0 keeps every record
        fit(bundle.network, train, valid, spec.training, device, checkpointer, task=spec.task)
        return {}

    track = tracker(spec.tracking, spec.experiment)
    with track.run(run_name=spec.run_key, run_id=previous_run_id) as tracking_run_id:
        if previous_run_id is None:
            track.log_params(
                {
                    **spec.training.model_dump(),
                    "run_key": spec.run_key,
                    "device": device.type,
                    "mixed_precision": uses_mixed_precision(device),
                    "torch_threads": threads,
                    "world_size": ranks.world_size,
                    "train_rows": len(train),
                    "warm_start_from": spec.warm_start_uri or "",
                    "valid_rows": len(valid),
                    **spec.tags,
                }
            )

        def on_epoch(stats: EpochStats) -> None:
            if stats.epoch == 1:
                fault_point("train.after-first-epoch")  # its checkpoint is already written
            log.info(
                "epoch %d/%d  train_loss=%.4f  val_loss=%.4f  val_%s=%.4f  (%.1fs, %.0f samples/s)",
                stats.epoch,
                spec.training.max_epochs,
                stats.train_loss,
                stats.val_loss,
                score_name,
                stats.val_score,
                stats.seconds,
                stats.samples_per_second,
            )
            track.log_metrics(
                {
                    "train_loss": stats.train_loss,
                    "val_loss": stats.val_loss,
                    f"val_{score_name}": stats.val_score,
                    "epoch_seconds": stats.seconds,
                    "samples_per_second": stats.samples_per_second,
                },
                step=stats.epoch,
            )

        log.info(
            "training on %s, rank 0 of %d (%s): %d train rows, %d validation rows",
            device,
            ranks.world_size,
            threads_note,
            len(train),
            len(valid),
        )
        state, _ = fit(
            bundle.network,
            train,
            valid,
            spec.training,
            device,
            checkpointer,
            on_epoch=on_epoch,
            extra={"tracking_run_id": tracking_run_id, "torch_threads": threads},
            task=spec.task,
        )
        bundle.network.to("cpu")
        for name, payload in {**bundle.to_files(), **model_files(bundle)}.items():
            store.put_bytes(spec.key(f"model/{name}"), payload)
        curves = training_curves_png(
            state.history,
            state.best_epoch,
            f"{spec.model_name} · run {spec.run_key}",
            score_name="ROC AUC" if spec.task == "binary" else "R^2",
            loss_name="log loss" if spec.task == "binary" else "squared error (standardised)",
        )
        curves_uri = store.put_bytes(spec.key("training_curves.png"), curves)
        history = [stats.__dict__ for stats in state.history]
        store.put_bytes(spec.key("history.json"), json.dumps(history, indent=2).encode())
        track.log_metrics({f"best_val_{score_name}": state.best_score, "best_epoch": state.best_epoch})
        png = scratch / "training_curves.png"
        png.write_bytes(curves)
        track.log_artifact(png)

        result = {
            "run_key": spec.run_key,
            "status": "complete",
            "device": device.type,
            "epochs": state.epochs_done,
            "best_epoch": state.best_epoch,
            "task": spec.task,
            "selection_metric": score_name,
            "best_val_score": state.best_score,
            "stopped_early": state.stopped_early,
            "world_size": ranks.world_size,
            "resumed_from_epoch": state.resumed_from,
            "model_uri": store.uri(spec.key("model")),
            "curves_uri": curves_uri,
            "tracking_run_id": tracking_run_id,
        }
        store.put_bytes(spec.key(RESULT_FILE), json.dumps(result, indent=2).encode())
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.training.job SPEC_URI", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_job(args[0])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
