"""Commands that only read (the registry, the contract, the help) start no orchestrator and load no
heavy stack: the import set is pinned, so they answer in about a second on any machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.paths import PACKAGE_ROOT

HEAVY = (
    "torch",
    "prefect",
    "great_expectations",
    "mlflow",
    "pyiceberg",
    "pulumi",
    "sklearn",
    "matplotlib",
    "pandas",  # ~0.7 s on its own: the registry and the contract are read without it
    "pyarrow",
)
PROBE = """
import json, sys
from mlops.cli import main
sys.argv = ["mlops", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def _loaded(args: list[str], env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["models", "list", "--env", "local"],
        ["env", "show", "--env", "local"],
        ["models", "--help"],
    ],
)
def test_read_only_commands_load_no_heavy_stack(args: list[str], local_root: Path) -> None:
    from mlops.bootstrap import bring_up_local
    from mlops.settings import load_settings

    bring_up_local(load_settings("local"))  # the local platform exists: list and show have something to read
    env = {**os.environ, "MLOPS_LOCAL_ROOT": str(local_root), "MLOPS_PROJECT_ROOT": str(PACKAGE_ROOT)}
    loaded = _loaded(args, env)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
