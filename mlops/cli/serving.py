"""`mlops deploy`, `mlops serve`, `mlops invoke`, `mlops monitor`: the model in production."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import typer
from rich.console import Console

from mlops.cli.errors import friendly_errors, prepare_flows

console = Console(soft_wrap=True)
EnvOption = typer.Option("local", "--env", "-e", help="Environment name.")


def _extra_errors() -> tuple[type[BaseException], ...]:
    from pipelines.deployment.steps import NotDeployable
    from pipelines.monitoring.steps import NothingToMonitor
    from pipelines.serving.live import NothingDeployed

    return (NotDeployable, NothingToMonitor, NothingDeployed)


def deploy(
    env: str = EnvOption,
    version: int | None = typer.Option(None, help="Registry version (default: the champion)."),
) -> None:
    """Deploy an approved version: smoke test, canary with baking, then promote or roll back."""

    with friendly_errors(extra=_extra_errors()):
        prepare_flows(env)
        from pipelines.flows.deployment import deployment_flow

        summary = deployment_flow(env=env, version=version)
    colour = "green" if summary["decision"] in ("promoted", "already_live") else "red"
    console.print(
        f"{summary['model']} v{summary['version']}: [{colour}]{summary['decision']}[/] {summary['reason']}",
        highlight=False,
    )
    if summary["decision"] not in ("promoted", "already_live"):
        raise typer.Exit(code=1)


def serve(
    env: str = EnvOption,
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8080, help="Port (SageMaker's contract uses 8080)."),
    capture: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of requests captured to the lake (default: serving.capture)."
    ),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (default: serving.workers; 'auto' is one per CPU)."
    ),
) -> None:
    """Serve the deployed model(s) with the SageMaker contract: GET /ping, POST /invocations."""
    import os

    from mlops.settings import load_settings
    from pipelines.deployment.endpoint import read_state
    from pipelines.serving.live import SERVE_CAPTURE, SERVE_ENVIRONMENT, live_app, require_deployed
    from pipelines.training.steps import open_environment

    with friendly_errors(extra=_extra_errors()):
        settings = load_settings(env).serving
        sampling = settings.capture if capture is None else capture
        processes = workers or settings.worker_count()
        ctx = open_environment(env)
        state = read_state(ctx.platform.artifacts, ctx.model_name)
        require_deployed(state)
        application = live_app(ctx, sampling) if processes == 1 else None
    weights = ", ".join(f"{v.name} {v.weight:.0%}" for v in state.variants)
    console.print(
        f"serving {ctx.model_name} ({weights}) on http://{host}:{port} with {processes} worker process(es)"
        "  (POST /invocations, GET /ping)"
    )
    from models.threads import WORKERS_ENV
    from pipelines.serving.server import run_server

    os.environ.update({SERVE_ENVIRONMENT: env, SERVE_CAPTURE: str(sampling), WORKERS_ENV: str(processes)})
    run_server(application or "pipelines.serving.live:worker_app", host, port, processes)


def invoke(
    payload: str | None = typer.Option(
        None, "--json", help="JSON body: an object, a list, or {'instances': [...]}."
    ),
    file: Path | None = typer.Option(None, "--file", help="A .json or .csv file to send."),
    url: str = typer.Option("http://127.0.0.1:8080", help="The endpoint's base URL."),
) -> None:
    """Send one request to a running endpoint and print its answer."""
    if (payload is None) == (file is None):
        raise typer.BadParameter("give exactly one of --json or --file")
    body = payload.encode() if payload is not None else file.read_bytes()  # type: ignore[union-attr]
    content_type = "text/csv" if file is not None and file.suffix.lower() == ".csv" else "application/json"
    request = urllib.request.Request(
        f"{url.rstrip('/')}/invocations", data=body, headers={"content-type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            variant = response.headers.get("X-Amzn-Invoked-Production-Variant", "?")
            console.print_json(response.read().decode())
            console.print(f"answered by variant {variant}")
    except urllib.error.HTTPError as error:
        console.print(
            f"[red]{error.code}[/]: {json.loads(error.read() or b'{}').get('error', error.reason)}",
            highlight=False,
        )
        raise typer.Exit(code=1) from None
    except urllib.error.URLError as error:
        console.print(f"[red]error:[/] no endpoint at {url} ({error.reason}); start one with `mlops serve`")
        raise typer.Exit(code=1) from None


def monitor(
    env: str = EnvOption, retrain: bool = typer.Option(True, help="Retrain and redeploy on a drift alert.")
) -> None:
    """Compare captured traffic with the training baseline; write the drift report; retrain on an alert."""

    with friendly_errors(extra=_extra_errors()):
        prepare_flows(env)
        from pipelines.flows.monitoring import monitoring_flow

        summary = monitoring_flow(env=env, retrain=retrain)
    drift = summary["drift"]
    console.print(
        f"{drift['model_name']} v{drift['version']}: drift {drift['status']} (max PSI {drift['max_psi']:.3f} over {drift['current_rows']:,} rows)"
    )
    if drift["alerts"]:
        console.print(f"  alerts: {', '.join(drift['alerts'])}")
    console.print(f"  drift report: {drift['report_uri']}")
    if summary["retraining"]:
        r = summary["retraining"]
        console.print(f"  retrained: {r['model_name']} v{r['version']} {r['status']}")
    if summary["deployment"]:
        console.print(f"  deployment: {summary['deployment']['decision']}")
