"""The serving container's entry (`mlops container serve`), run as SageMaker runs it: a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.cli import app
from tests.loopback import free_port

MLOPS = str(Path(sys.executable).parent / "mlops")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return 0


def test_the_container_serves_the_mounted_model(tmp_path: Path, trained: tuple[Any, pd.DataFrame]) -> None:
    bundle, test = trained
    model_dir = tmp_path / "opt-ml-model"  # what SageMaker mounts at /opt/ml/model
    model_dir.mkdir()
    for name, data in bundle.to_files().items():
        (model_dir / name).write_bytes(data)
    port = free_port()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "MLOPS_ENVIRONMENT": "local",
        "MLOPS_MODEL_VERSION": "7",
    }
    server = subprocess.Popen(
        [MLOPS, "container", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while _get(f"http://127.0.0.1:{port}/ping") != 200:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the container did not answer /ping"
            time.sleep(0.25)
        rows = test[bundle.feature_names].head(5)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=rows.to_json(orient="records").encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
            variant = response.headers["X-Amzn-Invoked-Production-Variant"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert variant == "v7"
    np.testing.assert_allclose(
        [p["churn_probability"] for p in answer["predictions"]], bundle.predict_proba(rows), rtol=1e-5
    )


def test_no_mounted_model_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "missing"))
    result = CliRunner().invoke(app, ["container", "serve", "--env", "local", "--host", "127.0.0.1"])
    assert result.exit_code == 1 and "no model at" in result.output and "Traceback" not in result.output
