"""Run a benchmark with a background CPU load: one spinning process per CPU, started 20 s before the
benchmark (so the load average, which the thread budget reads, shows it) and stopped after it.

    python -m bench.under_load bench.validation_cost [its arguments]

The benchmark runs in a process of its own and prints its thread settings, as it does when idle;
its results land in bench/results/NAME-busy.json.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import RESULT_SUFFIX, cpu_load


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or not args[0].startswith("bench."):
        print("usage: python -m bench.under_load bench.NAME [ARGS...]", file=sys.stderr)
        return 2
    with cpu_load() as spinning:
        print(f"background load: {spinning} spinning process(es), one per CPU", flush=True)
        environment = {**os.environ, RESULT_SUFFIX: "-busy"}
        return subprocess.run([sys.executable, "-m", *args], check=False, env=environment).returncode


if __name__ == "__main__":
    raise SystemExit(main())
