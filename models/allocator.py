"""The C allocator's thresholds for processes that allocate the same large tensors step after step.

glibc's malloc serves a block above its mmap threshold with a fresh mapping and hands freed memory
above its trim threshold back to the kernel. Its defaults adapt to the largest block freed so far
and trim at twice that, so a training step that frees a few tensors of some MB each gives the
memory back and faults it in again at the next step: 20 to 25% of a stacked sweep step on the
reference machine (`bench/sweep.py`), where the same step with the thresholds below reused it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for this setting on 64-bit systems
TRIM_THRESHOLD = 256 * 1024 * 1024  # freed memory the process keeps for its next step, at most


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MB from the heap and keep up to 256 MB of freed memory for reuse; returns
    whether the C library took the settings (only glibc on Linux has them; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or one without mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
