"""Known failures end the command with one clear message and exit code 1, not a stack trace."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

T = TypeVar("T")
err = Console(stderr=True)


def _known() -> tuple[type[BaseException], ...]:
    from mlops.contract import ContractError
    from mlops.settings import SettingsError
    from models.threads import ThreadSettingError
    from pipelines.adapters.factory import AdapterUnavailable
    from pipelines.adapters.local.registry import RegistryError
    from pipelines.errors import BatchInferenceError, BatchRejected, NoCuratedData
    from pipelines.training.launch import LaunchError
    from pipelines.usecase import UseCaseError

    return (
        ContractError,
        SettingsError,
        ThreadSettingError,
        UseCaseError,
        BatchRejected,
        NoCuratedData,
        BatchInferenceError,
        AdapterUnavailable,
        RegistryError,
        LaunchError,
        FileNotFoundError,
    )


class _ExpectedOutcomes(logging.Filter):
    """Shortens Prefect's log records about an expected outcome (a rejected batch, no data yet) to their
    first line, without the traceback: the command ends with the one block that explains it."""

    _expected: tuple[type[BaseException], ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._expected:  # on the first record, not at install: read-only commands never pay it
            self._expected = _known()
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if isinstance(error, self._expected) or any(cls.__name__ in message for cls in self._expected):
            record.msg, record.args = message.splitlines()[0][:300], ()
            record.exc_info, record.exc_text = None, None
        return True


# Where Prefect logs a run's failure; a filter on the logger itself survives Prefect's logging setup.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine")


def quiet_expected_outcomes() -> None:
    """Install the filter on Prefect's run loggers (and any handlers Prefect set up), unless --verbose."""
    if os.environ.get("MLOPS_VERBOSE") == "1":
        return
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in RUN_LOGGERS]
    if "prefect" in sys.modules:
        targets += [
            handler
            for name in list(logging.Logger.manager.loggerDict)
            if name.startswith("prefect")
            for handler in logging.getLogger(name).handlers
        ]
    for target in targets:
        if not any(isinstance(f, _ExpectedOutcomes) for f in target.filters):
            target.addFilter(_ExpectedOutcomes())


def prepare_flows(env: str) -> None:
    """Before a command runs flows: give them a Prefect API (mlops.flow_api) and quiet Prefect's records
    of expected outcomes (the flows are imported after this)."""
    from mlops.flow_api import ensure_flow_api

    ensure_flow_api(env)
    quiet_expected_outcomes()


@contextmanager
def friendly_errors(extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    quiet_expected_outcomes()
    try:
        yield
    except (*_known(), *extra) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except RuntimeError as exc:
        if "ephemeral Prefect API" not in str(exc):
            raise
        err.print(f"[bold red]error:[/] {escape(ephemeral_start_failed())}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


def ephemeral_start_failed() -> str:
    """What to do when Prefect's in-process API did not start in time (a busy machine)."""
    waited = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20")
    return (
        f"Prefect's temporary API did not start within {waited} s (is the machine busy?): run "
        "`mlops env up --env local --server` once and export the PREFECT_API_URL it prints, or raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    )


def run_friendly(fn: Callable[[], T]) -> T:
    with friendly_errors():
        return fn()


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(1)
