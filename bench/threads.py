"""Thread collapse: training throughput with torch's default threads vs the budget of models.threads,
on an idle machine and with a background CPU load, side by side in one run.

Each measurement runs in a fresh process (thread pools are sized once per process) and trains the
pipeline's network on in-memory tensors for a fixed number of batches. The background load is one
spinning process per CPU, bounded in time and stopped afterwards.

    python -m bench.threads [--batches 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench.common import cpu_load, report

CHILD = r"""
import json, os, sys, time
mode, batches = sys.argv[1], int(sys.argv[2])
if mode == "budget":
    from models.threads import configure_threads
    budget = configure_threads().describe()
import torch
from torch import nn
from models.network import TabularNet
if mode == "default":
    budget = f"{torch.get_num_threads()} thread(s) (torch default)"
torch.manual_seed(0)
net = TabularNet(12, [61, 4], 8, (64, 32), 0.1)
opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
x, c = torch.randn(1024, 12), torch.randint(0, 4, (1024, 2))
y = (torch.rand(1024) < 0.1).float()
loss_fn = nn.BCEWithLogitsLoss()
for _ in range(20):  # warm-up
    opt.zero_grad(); loss_fn(net(x, c), y).backward(); opt.step()
started = time.perf_counter()
for _ in range(batches):
    opt.zero_grad(); loss_fn(net(x, c), y).backward(); opt.step()
print(json.dumps({"samples_per_second": batches * 1024 / (time.perf_counter() - started), "threads": budget}))
"""


def _measure(mode: str, batches: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(batches)], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {}
    for mode in ("default", "budget"):
        results[f"idle/{mode}"] = _measure(mode, args.batches)
    with cpu_load(limit_seconds=600):
        for mode in ("default", "budget"):
            results[f"busy/{mode}"] = _measure(mode, args.batches)

    def rate(key: str) -> float:
        return float(results[key]["samples_per_second"])  # type: ignore[arg-type]

    rows = [(key, f"{rate(key):,.0f} samples/s with {value['threads']}") for key, value in results.items()]
    rows.append(("busy: budget / default", f"{rate('busy/budget') / rate('busy/default'):.2f}x"))
    rows.append(("idle: budget / default", f"{rate('idle/budget') / rate('idle/default'):.2f}x"))
    report("threads", rows, results)


if __name__ == "__main__":
    main()
