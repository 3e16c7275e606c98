"""Data-parallel training: two gloo ranks on CPU learn what one process learns from the same global
batches, and the entry point's ranks cooperate (only rank 0 writes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models.metrics import roc_auc
from models.network import TabularNet
from models.train import Ranks, TensorSplit, fit
from pipelines.training.launch import batch_node_command, free_loopback_port, torchrun_command


@dataclass(frozen=True)
class Loop:
    max_epochs: int = 4
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    patience: int = 10
    seed: int = 3


class Memory:
    def __init__(self) -> None:
        self.saved: bytes | None = None

    def save(self, payload: bytes) -> None:
        self.saved = payload

    def load(self) -> bytes | None:
        return self.saved


def _data(rows: int, seed: int) -> TensorSplit:
    generator = torch.Generator().manual_seed(seed)
    numeric = torch.randn(rows, 6, generator=generator)
    categorical = torch.randint(0, 4, (rows, 1), generator=generator)
    logits = numeric[:, 0] * 1.5 - numeric[:, 1] + (categorical[:, 0] == 2).float()
    labels = (torch.rand(rows, generator=generator) < torch.sigmoid(logits)).float()
    return TensorSplit(numeric, categorical, labels)


def _network() -> TabularNet:
    torch.manual_seed(11)
    return TabularNet(6, [5], 4, (16,), dropout=0.0)  # dropout draws per rank: off for an exact comparison


def _train(out: Path) -> None:
    network = _network()
    fit(network, _data(3_001, 1), _data(800, 2), Loop(), torch.device("cpu"), Memory())
    torch.save(network.state_dict(), out)


def _rank(rank: int, world: int, port: int, out: Path) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        assert Ranks.current() == Ranks(rank, world)
        network = _network()
        memory = Memory()
        fit(network, _data(3_001, 1), _data(800, 2), Loop(), torch.device("cpu"), memory)
        assert (memory.saved is not None) == (rank == 0)  # only rank 0 checkpoints
        if rank == 0:
            torch.save(network.state_dict(), out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_end_within_1e4_of_one_process(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _train(tmp_path / "one.pt")
    mp.spawn(_rank, args=(2, free_loopback_port(), tmp_path / "two.pt"), nprocs=2, join=True)
    one = torch.load(tmp_path / "one.pt")
    two = torch.load(tmp_path / "two.pt")
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-4, worst

    valid = _data(800, 2)

    def auc(state: dict[str, torch.Tensor]) -> float:
        network = _network()
        network.load_state_dict(state)
        with torch.no_grad():
            return roc_auc(
                valid.labels.numpy(), torch.sigmoid(network(valid.numeric, valid.categorical)).numpy()
            )

    assert abs(auc(one) - auc(two)) < 0.002


def test_torchrun_is_told_the_layout_and_batch_nodes_meet_at_the_main_node() -> None:
    local = torchrun_command("s3://b/run_spec.json", 2)
    assert "--nproc-per-node=2" in local and "--master-addr=127.0.0.1" in local
    assert local[-2:] == ["pipelines.training.job", "s3://b/run_spec.json"]
    child = batch_node_command(
        "s3://b/run_spec.json",
        {
            "AWS_BATCH_JOB_NUM_NODES": "4",
            "AWS_BATCH_JOB_NODE_INDEX": "2",
            "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
            "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.3.7",
        },
        8,
    )
    assert {"--nnodes=4", "--node-rank=2", "--master-addr=10.0.3.7", "--nproc-per-node=8"} <= set(child)
    from pipelines.training.launch import LaunchError

    with pytest.raises(LaunchError, match="AWS_BATCH_JOB_NUM_NODES"):
        batch_node_command("s3://b/run_spec.json", {}, 1)
    with pytest.raises(LaunchError, match="MAIN_NODE_PRIVATE_IPV4_ADDRESS"):
        batch_node_command("s3://b/x", {"AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1"}, 1)


def test_bad_layouts_fail_before_launch_in_one_line() -> None:
    from pydantic import ValidationError

    from mlops.settings import TrainingSettings

    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        TrainingSettings.model_validate({"distributed": {"processes_per_node": 0}})
    with pytest.raises(ValidationError, match="batch_size 8 is smaller than the world size 16"):
        TrainingSettings.model_validate(
            {"batch_size": 8, "distributed": {"nodes": 2, "processes_per_node": 8}}
        )
    assert TrainingSettings().distributed.world_size == 1  # one process unless an environment asks
