"""Cold start: the wall time of commands that only read, against a bare `python -c pass`.

Each command runs as users run it (a fresh `mlops` process) on a scratch local environment with a
few registered versions; each figure is the median of `--repeats` runs. Target (#20): every
read-only command answers in under a second.

    python -m bench.cold_start [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import report

TARGET_SECONDS = 1.0
COMMANDS: dict[str, list[str]] = {
    "mlops --help": ["--help"],
    "mlops env show": ["env", "show", "--env", "local"],
    "mlops models list": ["models", "list", "--env", "local"],
    "mlops run --help": ["run", "--help"],
}


def _wall(command: list[str], env: dict[str, str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _registered_versions(root: Path, env: dict[str, str], count: int = 3) -> None:
    """The local environment up, with `count` versions in its registry (placeholder bundle files:
    listing never loads a model)."""
    mlops = str(Path(sys.executable).parent / "mlops")
    subprocess.run([mlops, "env", "up", "--env", "local"], env=env, stdout=subprocess.DEVNULL, check=True)
    os.environ["MLOPS_LOCAL_ROOT"] = str(root)
    from mlops.contract_source import load_platform_contract
    from mlops.settings import load_settings
    from pipelines.platform import registry_for
    from pipelines.ports import ModelCandidate

    registry = registry_for(load_platform_contract(load_settings("local")))
    bundle = root / "placeholder-bundle"
    bundle.mkdir()
    for name in ("bundle.json", "weights.pt"):
        (bundle / name).write_bytes(b"{}")
    for run in range(count):
        registry.register(ModelCandidate("bench-model", f"run-{run}", bundle.as_uri(), {"auc": 0.8}, {}, {}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    mlops = str(Path(sys.executable).parent / "mlops")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as root:
        env = {**os.environ, "MLOPS_LOCAL_ROOT": root}
        _registered_versions(Path(root), env)
        bare = _wall([sys.executable, "-c", "pass"], env, args.repeats)
        walls = {label: _wall([mlops, *command], env, args.repeats) for label, command in COMMANDS.items()}
    payload = {
        "bare_python_s": bare,
        "commands_s": walls,
        "ratio_to_bare": {label: wall / bare for label, wall in walls.items()},
        "within_target": all(wall < TARGET_SECONDS for wall in walls.values()),
    }
    rows = [("python -c pass", f"{bare:.2f} s")]
    rows += [
        (label, f"{wall:.2f} s ({wall / bare:.0f}x bare) -> {'met' if wall < TARGET_SECONDS else 'MISSED'}")
        for label, wall in walls.items()
    ]
    rows.append(("target", f"every read-only command under {TARGET_SECONDS:.0f} s"))
    report("cold_start", rows, payload)
    return payload


if __name__ == "__main__":
    main()
