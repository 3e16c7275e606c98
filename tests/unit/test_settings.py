from __future__ import annotations

from pathlib import Path

import pytest

from mlops.settings import LocalPlatformSettings, SettingsError, load_settings


def test_local_settings_load() -> None:
    settings = load_settings("local")
    assert isinstance(settings.platform, LocalPlatformSettings)
    assert settings.pipeline.usecase_path().exists()


def test_unknown_environment_lists_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"known: .*local"):
        load_settings("nowhere")


def test_malformed_settings_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "usecases").mkdir()
    (tmp_path / "environments" / "broken.yaml").write_text(
        "name: broken\nplatform: {kind: local, root: x}\npipeline:\n  usecase: u.yaml\n  model_name: m1\n"
        "  training: {max_epochs: 0, batch_sise: 3}\n"
    )
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(SettingsError) as error:
        load_settings("broken")
    assert "pipeline.training.max_epochs" in str(error.value)
    assert "pipeline.training.batch_sise" in str(error.value)


def test_aws_environment_derives_its_contract_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "usecases").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(
        "name: dev\nplatform: {kind: aws, region: eu-west-1}\npipeline: {usecase: u.yaml, model_name: m1}\n"
    )
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    assert load_settings("dev").contract_parameter() == "/mlops/dev/platform-contract"
