"""The `mlops` command: help, environment bootstrap, contract errors, data generation, registry listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.cli import app

runner = CliRunner()


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("env", "data", "ingest", "run", "models", "demo"):
        assert command in result.output
    for group, sub in (
        ("env", "up"),
        ("env", "show"),
        ("run", "training"),
        ("models", "list"),
        ("data", "generate"),
    ):
        sub_help = runner.invoke(app, [group, sub, "--help"])
        assert (sub_help.exit_code == 0 and "--env" in sub_help.output) or "--out" in sub_help.output


def test_env_up_is_idempotent_and_show_prints_the_contract(local_root: Path) -> None:
    first = runner.invoke(app, ["env", "up", "--env", "local"])
    second = runner.invoke(app, ["env", "up", "--env", "local"])
    assert first.exit_code == 0 and "contract written" in first.output
    assert second.exit_code == 0 and "contract unchanged" in second.output and "created" not in second.output
    shown = runner.invoke(app, ["env", "show", "--env", "local"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["environment"] == "local"


def test_env_show_without_contract_is_one_clear_line(local_root: Path) -> None:
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 1
    assert "platform contract not found" in result.output and "mlops env up" in result.output
    assert "Traceback" not in result.output


def test_env_show_with_malformed_contract_names_the_field(local_root: Path) -> None:
    runner.invoke(app, ["env", "up", "--env", "local"])
    path = local_root / "contract.json"
    payload = json.loads(path.read_text())
    payload["tracking"]["tracking_uri"] = 42
    path.write_text(json.dumps(payload))
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 1 and "tracking.local.tracking_uri" in result.output


def test_unknown_environment_is_reported() -> None:
    result = runner.invoke(app, ["env", "show", "--env", "mars"])
    assert result.exit_code == 1 and "unknown environment 'mars'" in result.output


def test_data_generate_writes_csv_and_parquet(tmp_path: Path) -> None:
    for name in ("events.csv", "events.parquet"):
        out = tmp_path / name
        result = runner.invoke(app, ["data", "generate", "--rows", "1500", "--seed", "3", "--out", str(out)])
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
        assert len(frame) == 1500


def test_data_generate_rejects_bad_sizes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", "--rows", "10", "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code != 0 and "between 1,000 and 10,000,000" in result.output


def test_models_list_on_an_empty_registry_says_what_to_do(local_root: Path) -> None:
    runner.invoke(app, ["env", "up", "--env", "local"])
    result = runner.invoke(app, ["models", "list", "--env", "local"])
    assert result.exit_code == 0 and "mlops run training" in result.output


def _mlops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    script = Path(sys.executable).parent / "mlops"  # the venv's console script, whatever PATH says
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


@pytest.mark.slow
def test_demo_then_ingest_bad_file_then_list(local_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
    demo = _mlops("demo", "--env", "local", "--rows", "20000", env=env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "churn-model v1: Approved" in demo.stdout, demo.stdout[-2000:]
    assert "epoch 1/12" in demo.stdout + demo.stderr  # training progress is shown
    for label in ("evaluation report", "training curves", "data docs"):
        line = next(x for x in demo.stdout.splitlines() if x.strip().startswith(label))
        assert Path(line.split(": ", 1)[1].strip().removeprefix("file://")).exists(), line

    bad = tmp_path / "bad.csv"
    assert (
        _mlops(
            "data", "generate", "--rows", "2000", "--fault", "out_of_range", "--out", str(bad), env=env
        ).returncode
        == 0
    )
    rejected = _mlops("ingest", "--env", "local", str(bad), env=env)
    assert rejected.returncode == 1
    # Prefect logs the failed task run with its traceback; the command itself ends on one clear message.
    ending = rejected.stderr[rejected.stderr.rindex("error:") :]
    assert "rejected; quarantined at" in ending and "session_minutes" in ending and "report:" in ending
    # An expected outcome: one block, no traceback anywhere (it was 80 to 120 lines of Prefect log).
    assert "Traceback" not in rejected.stderr and len(rejected.stderr.splitlines()) <= 15, rejected.stderr

    assert "deployment: churn-model v1 promoted" in demo.stdout
    _serve_invoke_and_monitor(env, local_root)

    listed = _mlops("models", "list", "--env", "local", env=env)
    assert listed.returncode == 0 and "Approved" in listed.stdout and "★" in listed.stdout


def _serve_invoke_and_monitor(env: dict[str, str], local_root: Path) -> None:
    """After the quick start: `mlops serve` answers on loopback, `mlops monitor` writes a drift report."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "mlops"
    server = subprocess.Popen(
        [str(script), "serve", "--env", "local", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        customers = pd.read_parquet(next((local_root / "incoming").glob("demo-*.parquet")))[
            "customer_id"
        ].unique()[:250]
        payload = json.dumps([{"customer_id": c} for c in customers])
        answer = _mlops("invoke", "--url", f"http://127.0.0.1:{port}", "--json", payload, env=env)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        assert answer.stdout.count("churn_probability") == len(customers)
    finally:
        server.send_signal(signal.SIGINT)  # the capture buffer is flushed to the lake on shutdown
        server.wait(timeout=30)
    monitored = _mlops("monitor", "--env", "local", "--no-retrain", env=env)
    assert monitored.returncode == 0, monitored.stderr[-2000:]
    report = (
        next(line for line in monitored.stdout.splitlines() if "drift report:" in line)
        .split("drift report:")[1]
        .strip()
    )
    assert Path(report.removeprefix("file://")).read_text().startswith("<!doctype html>")


def test_data_generate_makes_as_many_segments_as_asked(tmp_path: Path) -> None:
    out = tmp_path / "segments.parquet"
    result = runner.invoke(
        app, ["data", "generate", "--rows", "100000", "--segments", "80", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out, columns=["country"])["country"].nunique() > 60
    refused = runner.invoke(app, ["data", "generate", "--segments", "400", "--out", str(out)])
    assert refused.exit_code == 1 and "--segments 400: must be between 1 and 249" in refused.output
