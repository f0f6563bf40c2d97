"""BatchNorm population statistics re-estimated on training crops (detectron2's PreciseBN).

A BatchNorm layer normalises with its batch's statistics while training and with running
averages of them in eval mode. Those averages follow the weights with a lag set by the momentum:
SMP's EfficientNet encoders use 0.01, so after a few hundred steps the eval-mode statistics still
average over weights long gone, and at short budgets they, not the weights, decide part of the
score. :func:`recompute_bn_stats` replaces them by the plain average of the batch statistics of
the current weights over a fixed set of training crops (no gradient, weights untouched), as
detectron2's ``PreciseBN`` hook does. Models without BatchNorm (LALE's RMSNorm keeps no running
statistics) are left exactly as they are.

:class:`PreciseBatchNorm` applies it before every validation and test of a run and, after each
validation inside training, puts the running statistics back: the training trajectory (and
its exact resumption) is the same whichever statistics are used for scoring.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from lale.recipe import BN_STATS, BnStats

__all__ = [
    "BN_STATS",
    "BnStats",
    "PreciseBatchNorm",
    "batch_norm_layers",
    "has_batch_norm",
    "recompute_bn_stats",
    "restore_bn_stats",
    "snapshot_bn_stats",
]

_STATS = ("running_mean", "running_var", "num_batches_tracked")
Batches = Callable[[], Iterator[Tensor]]
"""Yields normalised training batches ``B×C×H×W`` (any device), the same ones on every call."""


def batch_norm_layers(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any layer of ``model`` keeps BatchNorm running statistics."""
    return bool(batch_norm_layers(model))


def snapshot_bn_stats(model: nn.Module) -> list[dict[str, Tensor]]:
    """Copies of every BatchNorm layer's running statistics, for :func:`restore_bn_stats`."""
    return [
        {k: getattr(layer, k).detach().clone() for k in _STATS if getattr(layer, k) is not None}
        for layer in batch_norm_layers(model)
    ]


def restore_bn_stats(model: nn.Module, snapshot: Sequence[dict[str, Tensor]]) -> None:
    """Put back the statistics :func:`snapshot_bn_stats` copied."""
    for layer, saved in zip(batch_norm_layers(model), snapshot, strict=True):
        for key, value in saved.items():
            getattr(layer, key).copy_(value)


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Batches) -> int:
    """Re-estimate every BatchNorm layer's population statistics on ``batches()``.

    The running statistics are reset and accumulated as a cumulative (equal-weight) average
    of the batch statistics, with the model in training mode for the BatchNorm layers only
    (dropout and the like stay in eval mode), no gradient, and nothing else changed.

    Returns:
        How many batches were used (0 when the model has no BatchNorm layer: nothing runs).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average
        layer.train()
    device = next(model.parameters()).device
    used = 0
    try:
        for batch in batches():
            model(batch.to(device))
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        for module, mode in modes.items():
            module.train(mode)
    if used == 0:
        raise ValueError("no batches to re-estimate the BatchNorm statistics on")
    return used


@contextmanager
def kept_bn_stats(model: nn.Module) -> Iterator[None]:
    """Restore the model's BatchNorm statistics when the block ends."""
    saved = snapshot_bn_stats(model)
    try:
        yield
    finally:
        restore_bn_stats(model, saved)


class PreciseBatchNorm(L.Callback):
    """Re-estimate BatchNorm statistics before every validation and test (``"recompute"``).

    Place it after the callbacks that save weights at the end of a validation (they keep the
    re-estimated statistics, which are what was scored) and before the resumable checkpoint,
    which then holds the running statistics again: training continues as it would have.

    Args:
        batches: The fixed training batches (see :data:`Batches`).
    """

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self._saved: list[dict[str, Tensor]] | None = None
        self.seconds = 0.0
        """Time spent re-estimating so far (travels with the checkpoint)."""
        self.count = 0
        """Re-estimations so far."""

    def _recompute(self, net: nn.Module) -> None:
        started = time.monotonic()
        recompute_bn_stats(net, self.batches)
        self.seconds += time.monotonic() - started
        self.count += 1

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, "count": self.count}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.seconds, self.count = float(state_dict["seconds"]), int(state_dict["count"])

    def _net(self, pl_module: L.LightningModule) -> nn.Module:
        return getattr(pl_module, "net", pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = self._net(pl_module)
        if not has_batch_norm(net):
            return
        self._saved = snapshot_bn_stats(net) if trainer.state.fn == "fit" else None
        self._recompute(net)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._saved is not None:
            restore_bn_stats(self._net(pl_module), self._saved)
            self._saved = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = self._net(pl_module)
        if has_batch_norm(net):
            self._recompute(net)


def describe(kind: BnStats, crops: int) -> str:
    """A phrase for reports: how the eval-mode BatchNorm statistics were obtained."""
    if kind == "recompute":
        return f"BatchNorm statistics re-estimated on {crops} fixed training crops"
    return "BatchNorm running statistics"
