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


_held = contextlib.ExitStack()


def _use_api(url: str) -> None:
    """Point this process's flows at `url`: the environment for a Prefect not yet imported, and
    Prefect's settings context for one already imported (it read the environment at import)."""
    os.environ["PREFECT_API_URL"] = url
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        _held.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))


def release_flow_api() -> None:
    """Undo `_use_api` in this process (tests)."""
    _held.close()


def _configured() -> bool:
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" in sys.modules:  # a profile, or a test harness's settings context
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    return False


def ensure_flow_api(env: str) -> str:
    """Make sure the flows this process runs for `env` reach a Prefect API; returns how.

    Call it before the flows are imported, so that Prefect reads the API it is given at import.
    """
    if _configured():
        return "configured"
    settings = load_settings(env)
    if isinstance(settings.platform, LocalPlatformSettings):
        from mlops.local_orchestrator import running

        local = running(settings)
        if local is not None:
            _use_api(local.api_url)
            return "local server"
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # set in the active Prefect profile
        return "configured"
    from prefect.server.api.server import SubprocessASGIServer

    timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
    temporary = SubprocessASGIServer()
    with _children_die_with_us():
        temporary.start(timeout=timeout)  # Prefect's own client reuses this instance
    _without_heartbeats()
    return "temporary server"


def _without_heartbeats() -> None:
    """No flow-run heartbeats against a temporary server. A server uses them to mark runs whose
    process died as crashed, but this server dies with this process, so no one could ever miss one;
    and each flow run ends by joining Prefect's heartbeat thread, which sleeps in one-second steps
    (0.65 s of the 0.7 s a 200,000-row training flow spent in orchestration, measured)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    _held.enter_context(temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
