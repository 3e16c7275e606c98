"""The local orchestrator: a Prefect server on 127.0.0.1 and a process worker, started and stopped
by the CLI (`mlops env up --server`, `mlops env down`). Their PIDs and the API URL are kept in
`<root>/orchestrator.json`; every `mlops` command then talks to that server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops.bootstrap import local_contract, local_root
from mlops.paths import project_root
from mlops.settings import EnvironmentSettings

STATE_FILE = "orchestrator.json"


class OrchestratorError(Exception):
    """The local Prefect server or worker could not be started."""


@dataclass(frozen=True)
class LocalOrchestrator:
    api_url: str
    work_pool: str
    server_pid: int
    worker_pid: int


def _prefect() -> str:
    return str(Path(sys.executable).parent / "prefect")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def running(settings: EnvironmentSettings) -> LocalOrchestrator | None:
    path = local_root(settings) / STATE_FILE
    if not path.exists():
        return None
    state = LocalOrchestrator(**json.loads(path.read_text()))
    return state if _alive(state.server_pid) and _alive(state.worker_pid) else None


def _environment(settings: EnvironmentSettings, **extra: str) -> dict[str, str]:
    root = local_root(settings)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=str(root / "prefect-server"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        MLOPS_LOCAL_ROOT=str(root),
        MLOPS_PROJECT_ROOT=str(project_root()),
        **extra,
    )
    return env


def _wait_for(api_url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise OrchestratorError(f"the Prefect server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise OrchestratorError(f"the Prefect server did not answer at {api_url} within {timeout:.0f} s")


def start(settings: EnvironmentSettings, port: int = 4200, timeout: float = 120) -> LocalOrchestrator:
    """Start the server and a worker on the environment's process pool (a no-op if they run)."""
    current = running(settings)
    if current is not None:
        return current
    root = local_root(settings)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    pool = local_contract(settings).orchestrator.work_pool
    server = subprocess.Popen(
        [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(settings),
        stdout=(logs / "prefect-server.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(api_url, server, timeout)
        with_api = _environment(settings, PREFECT_API_URL=api_url, PREFECT_WORKER_QUERY_SECONDS="2")
        subprocess.run(
            [_prefect(), "work-pool", "create", pool, "--type", "process", "--overwrite"],
            env=with_api,
            capture_output=True,
            check=True,
            timeout=120,
        )
        worker = subprocess.Popen(
            [_prefect(), "worker", "start", "--pool", pool, "--type", "process"],
            env=with_api,
            stdout=(logs / "prefect-worker.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except Exception:
        _terminate(server.pid)
        raise
    state = LocalOrchestrator(api_url, pool, server.pid, worker.pid)
    (root / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    return state


def _terminate(pid: int, grace: float = 20) -> None:
    """SIGINT (Prefect's workers stop cleanly on it), then SIGTERM, then SIGKILL, to the whole group."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                if not _alive(pid):
                    return
            time.sleep(0.2)


def stop(settings: EnvironmentSettings) -> list[int]:
    """Stop what `start` started; returns the PIDs stopped."""
    path = local_root(settings) / STATE_FILE
    if not path.exists():
        return []
    state = LocalOrchestrator(**json.loads(path.read_text()))
    for pid in (state.worker_pid, state.server_pid):
        _terminate(pid)
    path.unlink()
    return [state.worker_pid, state.server_pid]
