"""What the hardware options of a training command resolve to, and leaving DDP cleanly."""

from __future__ import annotations

import torch

__all__ = ["default_precision", "leave_process_group"]


def default_precision(precision: str | None, accelerator: str) -> str:
    """``precision`` if given, else ``"bf16-mixed"`` on a GPU and ``"32-true"`` elsewhere."""
    if precision is not None:
        return precision
    gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if gpu else "32-true"


def leave_process_group() -> None:
    """Destroy the DDP process group once this rank is done.

    Lightning leaves it alive; at interpreter exit gloo's threads are then torn down unjoined
    and a rank can abort ("terminate called without an active exception"), which Lightning's
    process observer answers by killing every rank.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
