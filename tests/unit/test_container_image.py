"""The platform image's Dockerfile and entry point (no Docker engine here: the parts that can be run
are run, the rest is checked against the code that depends on it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.paths import IMAGE_PROJECT_ROOT, PACKAGE_ROOT

ENTRYPOINT = PACKAGE_ROOT / "docker" / "entrypoint.sh"
DOCKERFILE = (PACKAGE_ROOT / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def _run(*args: str, path: Path) -> str:
    env = {**os.environ, "PATH": f"{path}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, check=True, timeout=30
    ).stdout


@pytest.fixture
def fake_mlops(tmp_path: Path) -> Path:
    script = tmp_path / "mlops"
    script.write_text('#!/bin/sh\necho "mlops $*"\n')
    script.chmod(0o755)
    return tmp_path


def test_sagemaker_serve_starts_the_serving_container(fake_mlops: Path) -> None:
    assert _run("serve", path=fake_mlops) == "mlops container serve\n"


def test_batch_and_prefect_commands_run_as_given(fake_mlops: Path) -> None:
    assert _run(sys.executable, "-c", "print('job')", path=fake_mlops) == "job\n"
    assert _run("mlops", "serve", "--port", "1", path=fake_mlops) == "mlops serve --port 1\n"


def test_dockerfile_matches_what_the_platform_expects_of_the_image() -> None:
    instructions = _instructions()
    (base,) = [arg for op, arg in instructions if op == "FROM"]
    assert base.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-")
    workdir = next(arg for op, arg in instructions if op == "WORKDIR")
    env = " ".join(arg for op, arg in instructions if op == "ENV")
    # Kubernetes flow runs start in IMAGE_PROJECT_ROOT (mlops flows deploy), so the project is there.
    assert workdir == IMAGE_PROJECT_ROOT and f"MLOPS_PROJECT_ROOT={IMAGE_PROJECT_ROOT}" in env
    order = [f"{op} {arg}" for op, arg in instructions]
    lock = order.index("COPY requirements.lock ./")
    assert lock < order.index("RUN pip install -r requirements.lock") < order.index("COPY . .")
    user = next(arg for op, arg in instructions if op == "USER")
    assert user not in ("root", "0")
    entry = next(arg for op, arg in instructions if op == "ENTRYPOINT")
    assert entry == f'["{IMAGE_PROJECT_ROOT}/docker/entrypoint.sh"]' and os.access(ENTRYPOINT, os.X_OK)


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = {line.strip() for line in (PACKAGE_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git/", ".venv/", ".mlops/", ".oidc/", "mlruns/"} <= ignored
