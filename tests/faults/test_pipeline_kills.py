"""SIGKILL at the commit boundaries of registration and deployment, through fault points in a child
process: the rerun ends in the same state as an uninterrupted run, with one version and one live model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.faults import FAULT_VARIABLE
from pipelines.ports import ApprovalStatus

CHILD = """
import sys
from pathlib import Path
from mlops.bootstrap import bring_up_local
from mlops.settings import load_settings
from pipelines.deployment.steps import deploy_step
from pipelines.training import steps

bring_up_local(load_settings("local"))
ctx = steps.open_environment("local")
steps.ingest_step(ctx, Path(sys.argv[1]))
prepared = steps.prepare_step(ctx, steps.feature_step(ctx))
result = steps.train_step(ctx, prepared)
version = steps.register_step(ctx, prepared, result, steps.evaluate_step(ctx, prepared, result))
print("REGISTERED", version.version, version.status.value)
if version.status.value == "Approved":
    print("DEPLOYED", deploy_step(ctx).decision)
"""


def _pipeline(batch: Path, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_VARIABLE}
    if fault:
        env[FAULT_VARIABLE] = fault
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(batch)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["register.after-pending", "deploy.before-live"])
def test_a_kill_between_commits_is_completed_by_the_rerun(
    platform, local_root: Path, small_events: pd.DataFrame, tmp_path: Path, fault: str
) -> None:
    from pipelines.deployment.endpoint import read_state

    batch = tmp_path / "batch.parquet"
    small_events.to_parquet(batch, index=False)
    killed = _pipeline(batch, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    versions = platform.registry.versions()
    assert len(versions) == 1
    if fault == "register.after-pending":
        assert versions[0].status == ApprovalStatus.PENDING  # registered, not yet decided
    assert read_state(platform.artifacts, "churn-model").live_version() is None  # nothing half-live

    rerun = _pipeline(batch, None)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "REGISTERED 1 Approved" in rerun.stdout and "DEPLOYED promoted" in rerun.stdout
    assert [v.version for v in platform.registry.versions()] == [1]
    assert read_state(platform.artifacts, "churn-model").live_version() == 1
