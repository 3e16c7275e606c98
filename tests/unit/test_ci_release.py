"""`mlops ci`: credentials that outlive GitHub's 5-minute OIDC token, the stack, the runner's address, the
Prefect API through a port-forward, and the chart render, each tested as the workflow calls it."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.offline import Plan
from mlops.cli import app
from mlops.paths import PACKAGE_ROOT
from mlops.release_runner import ReleasePreflightError, stack_select_command
from tests.aws_emulator import aws_client
from tests.loopback import free_port

ROLE = "arn:aws:iam::123456789012:role/ci"


class _Answers(BaseHTTPRequestHandler):
    """GitHub's OIDC token endpoint and an address echo service, on loopback."""

    address = "198.51.100.7\n"

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            ok = (
                self.headers.get("Authorization") == "Bearer request-token"
                and "audience=sts.amazonaws.com" in self.path
            )
            self.send_response(200 if ok else 403)
            self.end_headers()
            self.wfile.write(json.dumps({"value": "oidc-token"}).encode())
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(self.address.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{base}/token?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")
    monkeypatch.setenv("MLOPS_CHECKIP_URL", f"{base}/ip")
    monkeypatch.setenv("GITHUB_ENV", str(tmp_path / "github_env"))
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _exported(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "github_env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_oidc_token_is_exchanged_once_for_credentials_that_last_the_job(
    aws: str, answers: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["ci", "aws-credentials", "--role-arn", ROLE, "--duration", "7200"])
    assert result.exit_code == 0, result.output
    exported = _exported(tmp_path)
    assert set(exported) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
    }
    # No token file and no role to re-assume: later steps use these keys until the job ends.
    assert not {"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} & set(exported)
    assert f"::add-mask::{exported['AWS_SECRET_ACCESS_KEY']}" in result.stdout
    assert f"::add-mask::{exported['AWS_SESSION_TOKEN']}" in result.stdout
    identity = aws_client(aws, "sts").get_caller_identity()
    assert identity["Account"]  # the emulator accepted the exchange


@pytest.mark.parametrize("duration", ["60", "50000"])
def test_a_session_duration_sts_refuses_is_one_line(answers: str, duration: str) -> None:
    result = CliRunner().invoke(app, ["ci", "aws-credentials", "--role-arn", ROLE, "--duration", duration])
    assert result.exit_code == 1 and "outside STS's 900..43200 s" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_outside_github_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    result = CliRunner().invoke(app, ["ci", "aws-credentials", "--role-arn", ROLE])
    assert result.exit_code == 1 and "id-token: write" in result.output


def test_credentials_last_at_least_as_long_as_every_job_that_uses_them() -> None:
    action = yaml.safe_load((PACKAGE_ROOT / ".github/actions/platform/action.yml").read_text())
    seconds = int(action["inputs"]["session-seconds"]["default"])
    assert "mlops ci aws-credentials" in json.dumps(action) and "aws-web-identity" not in json.dumps(action)
    for workflow in (PACKAGE_ROOT / ".github" / "workflows").glob("*.yml"):
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            uses_role = any((step.get("with") or {}).get("role-arn") for step in job["steps"])
            if uses_role:
                assert job["timeout-minutes"] * 60 <= seconds, f"{workflow.name}:{name}"


def test_the_runner_address_is_exported_for_the_cluster_api(answers: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ci", "runner-cidr"])
    assert result.exit_code == 0, result.output
    assert _exported(tmp_path) == {"MLOPS_RUNNER_CIDR": "198.51.100.7/32"}


def test_a_garbled_address_is_one_line(answers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Answers, "address", "<html>rate limited</html>")
    result = CliRunner().invoke(app, ["ci", "runner-cidr"])
    assert result.exit_code == 1 and "not an IPv4 address" in result.output


# --- the Pulumi stack -----------------------------------------------------------------------------------


def test_a_stack_without_a_recorded_secrets_provider_is_refused_on_a_self_managed_backend(
    tmp_path: Path,
) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text("config: {}\n")
    environ = {"PULUMI_BACKEND_URL": "s3://state-bucket"}
    with pytest.raises(ReleasePreflightError, match="records no secretsprovider"):
        stack_select_command("dev", stack, environ)
    assert stack_select_command("dev", stack, {**environ, "PULUMI_CONFIG_PASSPHRASE": "x"}) == [
        "pulumi",
        "stack",
        "select",
        "--create",
        "dev",
    ]
    stack.write_text(
        "secretsprovider: awskms://alias/mlops-pulumi-secrets?region=eu-west-1\nencryptedkey: abc\nconfig: {}\n"
    )
    assert stack_select_command("dev", stack, environ)[-2:] == [
        "--secrets-provider",
        "awskms://alias/mlops-pulumi-secrets?region=eu-west-1",
    ]
    with pytest.raises(ReleasePreflightError, match="PULUMI_ACCESS_TOKEN"):
        stack_select_command("dev", stack, {})


def test_pulumi_stack_names_the_missing_setup_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://state-bucket")
    for variable in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(app, ["ci", "pulumi-stack", "--env", "dev"])
    assert result.exit_code == 1 and "one-time `pulumi stack init dev" in result.output


# --- the Prefect API through a port-forward -------------------------------------------------------------


def _fake_tools(bin_dir: Path, site: Path) -> None:
    """`aws` writes a kubeconfig; `kubectl port-forward` serves /api/health on the asked local port."""
    bin_dir.mkdir()
    (site / "api").mkdir(parents=True)
    (site / "api" / "health").write_text("true")
    scripts = {
        "aws": "#!/bin/sh\nfor last; do :; done\necho 'apiVersion: v1' > \"$last\"\n",
        "kubectl": (
            f'#!/bin/sh\nfor a; do case "$a" in *:4200) port=${{a%%:4200}};; esac; done\n'
            f'exec {sys.executable} -m http.server "$port" --bind 127.0.0.1 --directory {site}\n'
        ),
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_the_in_cluster_prefect_api_is_reached_through_a_port_forward(
    aws: str, plans: dict[str, Plan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = plans["dev"].outputs["platformContract"]
    assert contract["orchestrator"]["cluster_name"] == "mlops-dev-eks"
    aws_client(aws, "ssm").put_parameter(
        Name="/mlops/dev/platform-contract", Value=json.dumps(contract), Type="String"
    )
    _fake_tools(tmp_path / "bin", tmp_path / "site")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_ENV", str(tmp_path / "github_env"))
    port = free_port()
    result = CliRunner().invoke(
        app,
        ["ci", "prefect-api", "--env", "dev", "--port", str(port), "--work-dir", str(tmp_path / "tunnel")],
    )
    exported = _exported(tmp_path) if (tmp_path / "github_env").exists() else {}
    try:
        assert result.exit_code == 0, result.output
        assert exported["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api"
        assert (tmp_path / "tunnel" / "kubeconfig").exists()
    finally:
        if "MLOPS_PREFECT_TUNNEL_PID" in exported:
            os.killpg(int(exported["MLOPS_PREFECT_TUNNEL_PID"]), signal.SIGTERM)


def test_prefect_cloud_mode_needs_the_api_url_from_the_job(
    aws: str, plans: dict[str, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = json.loads(json.dumps(plans["dev"].outputs["platformContract"]))
    contract["orchestrator"]["api_url"] = None
    aws_client(aws, "ssm").put_parameter(
        Name="/mlops/dev/platform-contract", Value=json.dumps(contract), Type="String"
    )
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["ci", "prefect-api", "--env", "dev"])
    assert result.exit_code == 1 and "set PREFECT_API_URL" in result.output


# --- chart render ---------------------------------------------------------------------------------------


def _fake_chart_tools(bin_dir: Path, published: str) -> None:
    bin_dir.mkdir()
    helm = (
        '#!/bin/sh\nchart=$3\nwhile [ $# -gt 0 ]; do [ "$1" = --version ] && version=$2; shift; done\n'
        f'case " {published} " in *" $version "*) ;; *) echo "Error: chart \\"$chart\\" version \\"$version\\" not found" >&2; exit 1;; esac\n'
        "printf 'apiVersion: v1\\nkind: ServiceAccount\\nmetadata:\\n  name: %s\\n' \"$chart\"\n"
    )
    for name, text in {
        "helm": helm,
        "kubeconform": "#!/bin/sh\ncat >/dev/null\necho 'Summary: 1 resource found - Valid: 1'\n",
    }.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_verify_charts_renders_every_release_and_names_a_version_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_chart_tools(tmp_path / "bin", "2025.9.5190948 0.19.0 82.6.0")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(
        app, ["ci", "verify-charts", "--env", "prod", "--work-dir", str(tmp_path / "render")]
    )
    assert result.exit_code == 0, result.output
    rendered = sorted(p.name for p in (tmp_path / "render").glob("*.yaml"))
    assert rendered == [
        "kube-prometheus-stack.yaml",
        "nvidia-device-plugin.yaml",
        "prefect-server.yaml",
        "prefect-worker.yaml",
    ]
    values = json.loads((tmp_path / "render" / "prefect-worker.values.json").read_text())
    assert values["worker"]["config"]["workPool"] == "prod-kubernetes"

    _fake_chart_tools(tmp_path / "bin2", "2025.9.5 0.19.0 82.6.0")  # the index without our Prefect version
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin2'}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(
        app, ["ci", "verify-charts", "--env", "dev", "--work-dir", str(tmp_path / "render2")]
    )
    assert result.exit_code == 1
    assert (
        'mlops-dev-prefect-server: helm template prefect-server 2025.9.5190948: Error: chart "prefect-server" version'
        in result.output
    )
