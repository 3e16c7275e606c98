"""A local environment whose `pipeline.usecase` points at another use case (as a user would set it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlops.paths import PACKAGE_ROOT


def environment_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usecase_file: Path, **pipeline: object
) -> Path:
    """A project root whose local environment uses `usecase_file`; returns the root."""
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True)
    settings = yaml.safe_load((PACKAGE_ROOT / "environments" / "local.yaml").read_text())
    settings["pipeline"]["usecase"] = str(usecase_file)
    settings["pipeline"]["training"].update({"max_epochs": 6, "batch_size": 512})
    settings["pipeline"].update(pipeline)
    (project / "environments" / "local.yaml").write_text(yaml.safe_dump(settings))
    for shared in ("usecases", "prefect.yaml", "pyproject.toml"):
        (project / shared).symlink_to(PACKAGE_ROOT / shared)
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(project))
    monkeypatch.setenv("MLOPS_LOCAL_ROOT", str(tmp_path / "local"))
    from mlops.bootstrap import bring_up_local
    from mlops.settings import load_settings

    bring_up_local(load_settings("local"))
    return project


@pytest.fixture
def use_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    def make(usecase_file: Path, **pipeline: object) -> Path:
        return environment_for(tmp_path, monkeypatch, usecase_file, **pipeline)

    return make
