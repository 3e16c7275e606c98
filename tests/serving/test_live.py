"""The local endpoint: a real HTTP server on 127.0.0.1 that follows deployments, and `mlops invoke`."""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd
import pytest
import uvicorn
from typer.testing import CliRunner

from mlops.cli import app as cli
from pipelines.deployment.endpoint import EndpointState, ServingVariant, write_state
from pipelines.serving.app import create_app
from pipelines.serving.live import LiveRouter, NothingDeployed
from pipelines.training import steps
from tests.loopback import free_port
from tests.registry_helpers import register_approved


@pytest.fixture
def deployed(platform: Any, trained: tuple[Any, pd.DataFrame], tmp_path: Any) -> Any:
    bundle, _ = trained
    register_approved(platform, bundle, tmp_path / "bundle", ("r1", "r2"))
    write_state(platform.artifacts, EndpointState("churn-model", [ServingVariant("v1", 1, 1.0)]))
    return steps.open_environment("local")


def test_live_router_follows_the_endpoint_state_in_the_background(platform: Any, deployed: Any) -> None:
    router = LiveRouter(deployed, refresh_seconds=0.05)
    try:
        assert {v.name for v in router.variants.values()} == {"v1"}
        write_state(
            platform.artifacts,
            EndpointState("churn-model", [ServingVariant("v1", 1, 0.9), ServingVariant("v2", 2, 0.1)]),
        )
        deadline = time.monotonic() + 30  # the watcher loads v2's model, then swaps the variants
        while len(router.variants) < 2 and time.monotonic() < deadline:
            assert router.pick(None).name == "v1"  # requests keep being answered meanwhile
            time.sleep(0.02)
        assert router.pick("v2").name == "v2"
        assert router.state.live_version() == 1 and len(router.variants) == 2
    finally:
        router.close()


def test_nothing_deployed_is_a_clear_error(platform: Any) -> None:
    with pytest.raises(NothingDeployed, match="mlops deploy"):
        LiveRouter(steps.open_environment("local"))


def test_real_server_on_loopback_answers_mlops_invoke(
    deployed: Any, trained: tuple[Any, pd.DataFrame]
) -> None:
    bundle, test = trained
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(LiveRouter(deployed)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        row = test[bundle.feature_names].head(1).to_json(orient="records")
        ok = CliRunner().invoke(cli, ["invoke", "--url", f"http://127.0.0.1:{port}", "--json", row])
        assert (
            ok.exit_code == 0 and "churn_probability" in ok.output and "answered by variant v1" in ok.output
        )
        bad = CliRunner().invoke(cli, ["invoke", "--url", f"http://127.0.0.1:{port}", "--json", "{oops"])
        assert bad.exit_code == 1 and "400" in bad.output and "not valid JSON" in bad.output
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
    down = CliRunner().invoke(cli, ["invoke", "--url", f"http://127.0.0.1:{port}", "--json", "{}"])
    assert down.exit_code == 1 and "no endpoint" in down.output
