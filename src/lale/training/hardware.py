"""What the hardware options of a training command resolve to when left at their defaults."""

from __future__ import annotations

import torch

__all__ = ["default_precision"]


def default_precision(precision: str | None, accelerator: str) -> str:
    """``precision`` if given, else ``"bf16-mixed"`` on a GPU and ``"32-true"`` elsewhere."""
    if precision is not None:
        return precision
    gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if gpu else "32-true"
