"""Freed tensor memory stays with the process for the next step once `keep_freed_memory` is set."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Twenty tensors of 4 MB alive at once, freed together, twenty times: a stacked training step in small.
# The page faults of the last ten steps are counted (the heap takes a few steps to settle). glibc's
# own adaptive thresholds keep or return that memory depending on what the process freed before, so
# the contrast is with thresholds that always return it: "return" maps every 4 MB block afresh.
_STEPS = """
import ctypes, ctypes.util, json, resource, sys, torch
from models.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    taken = keep_freed_memory()
else:
    mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    taken = bool(mallopt(-3, 128 * 1024)) and bool(mallopt(-1, 128 * 1024))
for step in range(20):
    if step == 10:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(1_000_000) for _ in range(20)]
    del tensors
print(json.dumps({"taken": taken, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_steps_reuse_freed_memory_instead_of_faulting_it_in_again() -> None:
    returned, kept = _faults("return"), _faults("keep")
    assert returned["taken"] and kept["taken"]
    pages = 20 * 4_000_000 // 4096  # one step's tensors
    assert returned["faults"] > 5 * pages  # memory handed back is faulted in again at every step
    assert kept["faults"] < pages // 2  # kept: the steps reuse it
