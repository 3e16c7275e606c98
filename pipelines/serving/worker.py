"""One serving worker process: `mlops serve --workers N` starts N of these with uvicorn.

uvicorn imports this factory in each worker; the command passes the environment and the capture
share through variables. Every worker follows the endpoint state and captures on its own (their
commits to the capture table are serialised by the lake's optimistic concurrency, and a conflicting
commit is spilled and retried, never lost), and gets 1/N of the process's CPU budget.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

ENV_VARIABLE = "MLOPS_SERVE_ENV"
CAPTURE_VARIABLE = "MLOPS_SERVE_CAPTURE"


def app_from_environment() -> FastAPI:
    """The app of one worker, for the environment named by $MLOPS_SERVE_ENV."""
    from mlops.runtime import configure_runtime
    from pipelines.serving.app import create_app
    from pipelines.serving.capture import LakeCapture
    from pipelines.serving.live import LiveRouter
    from pipelines.training.steps import open_environment

    configure_runtime()
    ctx = open_environment(os.environ[ENV_VARIABLE])
    router = LiveRouter(ctx)
    share = float(os.environ.get(CAPTURE_VARIABLE, "1.0"))
    sink = LakeCapture(ctx.platform.lake, router.model_name, sampling=share) if share > 0 else None
    return create_app(router, sink)
