"""A real local deployment run: Prefect server, process work pool, worker, run to completion, clean stop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops.local_orchestrator import STATE_FILE, _alive
from pipelines.training import steps

pytestmark = pytest.mark.slow


def _mlops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "mlops"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def test_deployments_run_on_a_local_server_and_worker(
    platform, small_events: pd.DataFrame, local_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "events.parquet"
    small_events.to_parquet(source, index=False)
    steps.ingest_step(steps.open_environment("local"), source)  # the deployment trains on what the lake holds

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    up = _mlops("env", "up", "--env", "local", "--server", "--port", str(port), env=env)
    state_file = local_root / STATE_FILE
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}/api" in up.stdout
        deployed = _mlops("flows", "deploy", "--env", "local", env=env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "training-local" in deployed.stdout
        ran = _mlops("flows", "run", "training", "--env", "local", "--timeout", "300", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Completed" in ran.stdout
        assert [v.model_name for v in platform.registry.versions()] == ["churn-model"]
    finally:
        pids = json.loads(state_file.read_text()).values() if state_file.exists() else []
        down = _mlops("env", "down", "--env", "local", env=env)
    assert down.returncode == 0 and "stopped 2 process(es)" in down.stdout
    assert not state_file.exists()
    assert not any(_alive(int(pid)) for pid in pids if isinstance(pid, int))
