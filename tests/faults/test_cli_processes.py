"""The CLI on a busy or hostile day: a SIGKILLed command leaves no Prefect server behind, and a running
local server is reused instead of starting another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlops import flow_api
from mlops.local_orchestrator import LocalOrchestrator
from mlops.paths import PACKAGE_ROOT

SERVER = "prefect.server.api.server:create_app"


def _temporary_servers(parent: psutil.Process) -> list[psutil.Process]:
    try:
        return [c for c in parent.children(recursive=True) if SERVER in " ".join(c.cmdline())]
    except psutil.Error:
        return []


@pytest.mark.slow
def test_a_killed_command_leaves_no_temporary_server(local_root: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text("event_id\n1\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "MLOPS_LOCAL_ROOT": str(local_root)}
    command = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlops"), "ingest", "--env", "local", str(batch)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=PACKAGE_ROOT,
    )
    parent = psutil.Process(command.pid)
    deadline = time.monotonic() + 300
    servers: list[psutil.Process] = []
    while not servers and command.poll() is None and time.monotonic() < deadline:
        servers = _temporary_servers(parent)
        time.sleep(0.2)
    assert servers, "the command never started Prefect's temporary server"
    command.send_signal(signal.SIGKILL)
    command.wait(timeout=30)
    _, alive = psutil.wait_procs(servers, timeout=60)
    for process in alive:  # never leave one behind, even when the assertion below fails
        process.kill()
    assert not alive, [p.pid for p in alive]


def test_a_running_local_server_is_reused(monkeypatch: pytest.MonkeyPatch, local_root: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", "")  # unset for the call; restored (absent) after the test
    server = LocalOrchestrator("http://127.0.0.1:4999/api", "local-process", 1, 2)
    monkeypatch.setattr("mlops.local_orchestrator.running", lambda settings: server)
    before = PREFECT_API_URL.value()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # whatever a harness set
        try:
            assert flow_api.ensure_flow_api("local") == "local server"
            assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4999/api"
            assert PREFECT_API_URL.value() == "http://127.0.0.1:4999/api"  # Prefect, imported, sees it
            assert flow_api.ensure_flow_api("local") == "configured"
        finally:
            flow_api.release_flow_api()  # inner settings first, then the outer block's
    assert PREFECT_API_URL.value() == before


def test_flows_send_heartbeats_only_to_a_server_that_outlives_them(
    monkeypatch: pytest.MonkeyPatch, local_root: Path
) -> None:
    """A temporary server dies with the command, so nothing could miss a heartbeat: none are sent
    (each flow run would wait on Prefect's heartbeat thread at its end). A running local server
    keeps them, to mark a killed command's runs as crashed."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    def heartbeat() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    monkeypatch.setenv("PREFECT_API_URL", "")
    before = heartbeat()
    assert before is not None
    monkeypatch.setattr(SubprocessASGIServer, "start", lambda self, timeout=None: None)  # no real start
    monkeypatch.setattr("mlops.local_orchestrator.running", lambda settings: None)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        try:
            assert flow_api.ensure_flow_api("local") == "temporary server"
            assert heartbeat() is None
        finally:
            flow_api.release_flow_api()
    assert heartbeat() == before

    server = LocalOrchestrator("http://127.0.0.1:4999/api", "local-process", 1, 2)
    monkeypatch.setattr("mlops.local_orchestrator.running", lambda settings: server)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        try:
            assert flow_api.ensure_flow_api("local") == "local server"
            assert heartbeat() == before
        finally:
            flow_api.release_flow_api()


def test_a_temporary_server_that_does_not_start_in_time_is_one_line_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    import typer
    from rich.console import Console

    from mlops.cli.errors import friendly_errors
    from mlops.runtime import configure_runtime

    configure_runtime()
    assert int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]) >= 120  # not Prefect's 20 s
    printed = io.StringIO()
    monkeypatch.setattr("mlops.cli.errors.err", Console(file=printed, width=400))
    with pytest.raises(typer.Exit), friendly_errors():
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")
    (line,) = printed.getvalue().strip().splitlines()
    assert "did not start within" in line and "mlops env up --env local --server" in line
