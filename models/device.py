"""Device choice: CUDA when present (with mixed precision), CPU otherwise."""

from __future__ import annotations

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """`prefer` may force "cpu"; otherwise CUDA is used whenever it is available."""
    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def uses_mixed_precision(device: torch.device) -> bool:
    return device.type == "cuda"
