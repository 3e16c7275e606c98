"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and in the right order."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from mlops.cli import app
from mlops.paths import PACKAGE_ROOT

WORKFLOWS = sorted((PACKAGE_ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((PACKAGE_ROOT / ".github" / "workflows" / name).read_text())


def test_workflows_and_action_match_githubs_schemas() -> None:
    for schema, files in (
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", [PACKAGE_ROOT / ".github/actions/platform/action.yml"]),
    ):
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--config", "zizmor.yml", ".github/"],
        cwd=PACKAGE_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_goes_dev_then_staging_then_approved_prod_with_promotion() -> None:
    jobs = _load("release.yml")["jobs"]
    assert (
        jobs["dev"]["needs"] == "checks"
        and jobs["staging"]["needs"] == "dev"
        and jobs["prod"]["needs"] == "staging"
    )
    assert jobs["prod"]["environment"] == "production"  # protected: required reviewers approve the deployment
    assert _step_order(jobs["staging"], "flows run training --env staging", "promote export --from staging")
    assert _step_order(
        jobs["prod"],
        "pulumi up -s prod",
        "actions/download-artifact",
        "promote import --to prod",
        "flows run deployment --env prod",
    )
    uploaded = next(
        s for s in jobs["staging"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    downloaded = next(
        s for s in jobs["prod"]["steps"] if s.get("uses", "").startswith("actions/download-artifact")
    )
    export_dir = _flag_value(jobs["staging"], "promote export", "--out")
    import_dir = _flag_value(jobs["prod"], "promote import", "--package")
    assert (
        uploaded["with"]["name"] == downloaded["with"]["name"]
    )  # the package staging made is the one prod imports
    assert uploaded["with"]["path"].rstrip("/") == export_dir and downloaded["with"]["path"] == import_dir
    assert uploaded["with"]["if-no-files-found"] == "error"
    for name in ("dev", "staging", "prod"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}  # OIDC, no stored keys
        # This commit's image: the stack is tagged with it, it is pushed, then flows use it.
        assert _step_order(
            jobs[name],
            f"pulumi up -s {name}",
            f"image publish --env {name}",
            f"flows deploy --env {name}",
            f"--env {name} --timeout",
        )
        pulumi_up = next(s["run"] for s in jobs[name]["steps"] if "pulumi up" in s.get("run", ""))
        assert "--config-path" in pulumi_up and "platform.compute.image_tag=${GITHUB_SHA}" in pulumi_up
        assert any(
            f"policies/enforcement/{name}.json" in run
            for run in (s.get("run", "") for s in jobs[name]["steps"])
        )


def _step_order(job: dict[str, Any], *markers: str) -> bool:
    """True when a step matching each marker (in `run` or `uses`) exists, in the markers' order."""
    steps = [f"{step.get('uses', '')} {step.get('run', '')}" for step in job["steps"]]
    found = [next((i for i, text in enumerate(steps) if marker in text), -1) for marker in markers]
    return -1 not in found and found == sorted(found)


def _flag_value(job: dict[str, Any], command: str, flag: str) -> str:
    line = next(step["run"] for step in job["steps"] if command in step.get("run", ""))
    words = shlex.split(line)
    return words[words.index(flag) + 1]


def test_every_mlops_command_the_workflows_call_exists() -> None:
    runner = CliRunner()
    calls = []
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                for line in step.get("run", "").splitlines():
                    words = shlex.split(line.split(";")[0].replace("for env in dev staging prod", ""))
                    if words and words[0].endswith("/mlops"):
                        calls.append([w for w in words[1:] if not w.startswith("-")][:2])
    assert calls
    for words in calls:
        command = words[:1] if words[0] in ("plan",) else words
        assert runner.invoke(app, [*command, "--help"]).exit_code == 0, words
