"""Where a command's flows find the Prefect API, on a machine that may be busy.

In order: PREFECT_API_URL when set; the local server of `mlops env up --server` when it is running (no
start-up cost at all); otherwise Prefect's temporary server, started here from the main thread with a
generous timeout and tied to this process, so that a command killed by SIGKILL leaves no server behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from mlops.settings import LocalPlatformSettings, load_settings

_PR_SET_PDEATHSIG = 1
_spawning = threading.Lock()


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when the parent dies, however it dies."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def _children_die_with_us() -> Iterator[None]:
    """Processes started inside this block get `_die_with_parent` (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    real: Callable[..., Any] = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("preexec_fn", _die_with_parent)
        return real(*args, **kwargs)

    with _spawning:
        subprocess.Popen = popen  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            subprocess.Popen = real  # type: ignore[misc,assignment]


def ensure_flow_api(env: str) -> str:
    """Make sure the flows this process runs for `env` reach a Prefect API; returns how."""
    if os.environ.get("PREFECT_API_URL"):
        return "configured"
    settings = load_settings(env)
    if isinstance(settings.platform, LocalPlatformSettings):
        from mlops.local_orchestrator import running

        local = running(settings)
        if local is not None:
            os.environ["PREFECT_API_URL"] = local.api_url
            return "local server"
    from prefect.server.api.server import SubprocessASGIServer

    timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
    temporary = SubprocessASGIServer()
    with _children_die_with_us():
        temporary.start(timeout=timeout)  # Prefect's own client reuses this instance
    return "temporary server"
