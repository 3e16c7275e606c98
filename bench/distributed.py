"""Data-parallel training throughput: 1 rank vs 2 gloo ranks on this machine, and the all-reduce
share of a step, side by side in one run.

The all-reduce share is measured by running the same DDP steps with and without gradient
synchronisation (`no_sync`): share = 1 - unsynchronised time / synchronised time. A larger network
(`--hidden 1024,1024`) shows the regime where data parallelism pays; on a GPU machine, run it with
`--backend nccl --ranks 1,2,4,8` for the scaling efficiency at 1, 2, 4 and 8 GPUs.

    python -m bench.distributed [--hidden 64,32] [--batches 200] [--ranks 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bench.common import report
from models.network import TabularNet
from pipelines.training.launch import free_loopback_port

GLOBAL_BATCH = 1024


def _steps(model: nn.Module, batches: int, rows: int, sync: bool) -> float:
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    numeric, categorical = torch.randn(rows, 12), torch.randint(0, 8, (rows, 2))
    labels = (torch.rand(rows) < 0.2).float()
    started = time.perf_counter()
    for _ in range(batches):
        optimiser.zero_grad(set_to_none=True)
        if sync or not isinstance(model, DistributedDataParallel):
            loss_fn(model(numeric, categorical), labels).backward()
        else:
            with model.no_sync():
                loss_fn(model(numeric, categorical), labels).backward()
        optimiser.step()
    return time.perf_counter() - started


def _rank(
    rank: int, world: int, port: int, hidden: tuple[int, ...], batches: int, out: str, backend: str
) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"})
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(TabularNet(12, [9, 9], 8, hidden, 0.0))
        rows = GLOBAL_BATCH // world
        _steps(model, 10, rows, True)  # warm-up
        synced = _steps(model, batches, rows, True)
        local = _steps(model, batches, rows, False)
        if rank == 0:
            Path(out).write_text(json.dumps({"synced": synced, "local": local}))
    finally:
        dist.destroy_process_group()


def _single(hidden: tuple[int, ...], batches: int) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = TabularNet(12, [9, 9], 8, hidden, 0.0)
    _steps(model, 10, GLOBAL_BATCH, True)
    return _steps(model, batches, GLOBAL_BATCH, True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", default="64,32")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--ranks", default="2")
    parser.add_argument("--backend", default="gloo")
    args = parser.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    one = _single(hidden, args.batches)
    rows = [("1 process", f"{args.batches * GLOBAL_BATCH / one:,.0f} samples/s")]
    payload: dict[str, object] = {"hidden": hidden, "one_process_seconds": one}
    for world in (int(r) for r in args.ranks.split(",")):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            mp.spawn(
                _rank,
                args=(world, free_loopback_port(), hidden, args.batches, out.name, args.backend),
                nprocs=world,
                join=True,
            )
            timing = json.loads(Path(out.name).read_text())
        rate = args.batches * GLOBAL_BATCH / timing["synced"]
        share = 1 - timing["local"] / timing["synced"]
        rows.append((f"{world} ranks ({args.backend})", f"{rate:,.0f} samples/s"))
        rows.append(
            (
                f"{world} ranks: speed-up / efficiency",
                f"{one / timing['synced']:.2f}x / {one / timing['synced'] / world:.2f}",
            )
        )
        rows.append((f"{world} ranks: all-reduce share of a step", f"{share:.0%}"))
        payload[f"ranks_{world}"] = {**timing, "samples_per_second": rate, "allreduce_share": share}
    report(f"distributed-{args.hidden.replace(',', 'x')}", rows, payload)


if __name__ == "__main__":
    main()
