"""Fault points: named places between two commits where a test can kill the process for real.

`fault_point("ingest.after-raw")` does nothing unless $MLOPS_FAULT_POINT names it; then the process
dies by SIGKILL on the spot, exactly between the two commits around it, as a crash or an OOM kill
would leave it. Recovery tests run a command with the variable set, then run it again without.
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "MLOPS_FAULT_POINT"


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
