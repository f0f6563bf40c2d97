"""Training losses: multiclass soft Dice (the ARAS400k recipe's loss), cross-entropy, and both.

All losses take ``B×C×H×W`` logits and a ``B×H×W`` target; ``ignore_index`` pixels add nothing to
the value or the gradient. Dice matches SMP's ``DiceLoss(mode="multiclass")``, so a class absent
from a batch's truth adds 0 (docs/design.md#losses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lale.recipe import LOSS_NAMES, LossName

__all__ = [
    "LOSS_NAMES",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "LossName",
    "WeightScheme",
    "build_loss",
    "class_weights_from_counts",
]

WeightScheme = Literal["inverse_sqrt", "inverse", "median_freq"]


def _weights_tensor(class_weights: Sequence[float] | Tensor | None) -> Tensor | None:
    """Validated 1-D float weights (finite, non-negative, not all zero), or ``None``."""
    if class_weights is None:
        return None
    w = torch.as_tensor(
        class_weights.detach().cpu() if isinstance(class_weights, Tensor) else class_weights,
        dtype=torch.float32,
    )
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(f"class weights must be a 1-D sequence, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not bool((w > 0).any()):
        raise ValueError(
            f"class weights must be finite, non-negative and not all zero, got {w.tolist()}"
        )
    return w


def _compute_dtype(logits: Tensor) -> torch.dtype:
    """At least fp32: half-precision logits are upcast, fp64 stays fp64."""
    return torch.promote_types(logits.dtype, torch.float32)


def _check_inputs(logits: Tensor, target: Tensor, weight: Tensor | None) -> None:
    if logits.ndim < 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"expected logits B×C×… and target B×…, got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if weight is not None and weight.numel() != logits.shape[1]:
        raise ValueError(f"{weight.numel()} class weights for {logits.shape[1]} classes")


class DiceLoss(nn.Module):
    """Multiclass soft Dice loss with SMP's semantics (docs/design.md#losses).

    Args:
        ignore_index: Target value of unlabelled pixels; ``None`` if every pixel is labelled.
        class_weights: Optional per-class weights of the per-class losses (weighted mean).
        smooth: Added to numerator and denominator of every per-class Dice.
        eps: Lower bound of the denominator.
    """

    weight: Tensor | None

    def __init__(
        self,
        ignore_index: int | None = 255,
        class_weights: Sequence[float] | Tensor | None = None,
        smooth: float = 0.0,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth = float(smooth)
        self.eps = float(eps)
        self.register_buffer("weight", _weights_tensor(class_weights), persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Dice loss of ``logits`` (``B×C×…``) against ``target`` (``B×…``); a scalar."""
        _check_inputs(logits, target, self.weight)
        b, c = logits.shape[:2]
        probs = logits.to(_compute_dtype(logits)).log_softmax(dim=1).exp().reshape(b, c, -1)
        labels = target.reshape(b, -1).long()
        if self.ignore_index is not None:
            valid = labels != self.ignore_index
            labels = torch.where(valid, labels, torch.zeros_like(labels))
            probs = torch.where(valid.unsqueeze(1), probs, torch.zeros_like(probs))
            onehot = F.one_hot(labels, c).permute(0, 2, 1) * valid.unsqueeze(1)
        else:
            onehot = F.one_hot(labels, c).permute(0, 2, 1)
        onehot = onehot.to(probs.dtype)
        intersection = (probs * onehot).sum(dim=(0, 2))
        cardinality = (probs + onehot).sum(dim=(0, 2))
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth).clamp_min(self.eps)
        loss = (1.0 - dice) * (onehot.sum(dim=(0, 2)) > 0).to(dice.dtype)
        if self.weight is None:
            return loss.mean()
        weight = self.weight.to(loss.dtype)
        return (loss * weight).sum() / weight.sum()


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy with an ignore label and optional class weights.

    The mean is over labelled pixels, weighted as ``torch.nn.functional.cross_entropy`` does
    (``Σ w[y]·nll / Σ w[y]``); a batch without labelled pixels gives 0 instead of NaN.

    Args:
        ignore_index: Target value of unlabelled pixels; ``None`` if every pixel is labelled.
        class_weights: Optional per-class weights.
        label_smoothing: Passed to ``F.cross_entropy``.
    """

    weight: Tensor | None

    def __init__(
        self,
        ignore_index: int | None = 255,
        class_weights: Sequence[float] | Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", _weights_tensor(class_weights), persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of ``logits`` (``B×C×…``) against ``target`` (``B×…``); a scalar."""
        _check_inputs(logits, target, self.weight)
        labels = target.long()
        ignore = -100 if self.ignore_index is None else self.ignore_index
        dtype = _compute_dtype(logits)
        weight = None if self.weight is None else self.weight.to(dtype)
        per_pixel = F.cross_entropy(
            logits.to(dtype),
            labels,
            weight=weight,
            ignore_index=ignore,
            reduction="none",
            label_smoothing=self.label_smoothing,
        )
        valid = labels != ignore
        if weight is None:
            denominator = valid.sum().to(dtype)
        else:
            safe = torch.where(valid, labels, torch.zeros_like(labels))
            denominator = (weight[safe] * valid).sum()
        return per_pixel.sum() / denominator.clamp_min(torch.finfo(per_pixel.dtype).tiny)


class DiceCELoss(nn.Module):
    """``dice_weight · Dice + ce_weight · cross-entropy``, both with the same ignore label and
    class weights.

    Args:
        ignore_index: Target value of unlabelled pixels.
        class_weights: Optional per-class weights, used by both terms.
        dice_weight: Factor of the Dice term.
        ce_weight: Factor of the cross-entropy term.
    """

    def __init__(
        self,
        ignore_index: int | None = 255,
        class_weights: Sequence[float] | Tensor | None = None,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.dice = DiceLoss(ignore_index=ignore_index, class_weights=class_weights)
        self.ce = CrossEntropyLoss(ignore_index=ignore_index, class_weights=class_weights)
        self.dice_weight = float(dice_weight)
        self.ce_weight = float(ce_weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The weighted sum of both losses; a scalar."""
        return self.dice_weight * self.dice(logits, target) + self.ce_weight * self.ce(
            logits, target
        )


def build_loss(
    name: LossName,
    class_weights: Sequence[float] | Tensor | None = None,
    ignore_index: int | None = 255,
) -> nn.Module:
    """The loss called ``name``: ``"dice"``, ``"ce"`` or ``"dice+ce"`` (their sum).

    Args:
        name: Which loss.
        class_weights: Optional per-class weights (e.g. from :func:`class_weights_from_counts`);
            their number must match the logits' channels at call time.
        ignore_index: Target value of unlabelled pixels.

    Raises:
        ValueError: Unknown ``name`` (the message lists the valid ones) or invalid weights.
    """
    if name == "dice":
        return DiceLoss(ignore_index=ignore_index, class_weights=class_weights)
    if name == "ce":
        return CrossEntropyLoss(ignore_index=ignore_index, class_weights=class_weights)
    if name == "dice+ce":
        return DiceCELoss(ignore_index=ignore_index, class_weights=class_weights)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}")


def class_weights_from_counts(
    pixel_counts: Sequence[int] | Sequence[float] | np.ndarray[Any, Any] | Tensor,
    scheme: WeightScheme = "inverse_sqrt",
) -> list[float]:
    """Per-class loss weights from the training split's pixel counts per class.

    With class frequencies ``f_c = n_c / Σ n``:

    - ``"inverse_sqrt"``: ``w_c ∝ 1 / sqrt(f_c)`` — a moderate boost of rare classes (default).
    - ``"inverse"``: ``w_c ∝ 1 / f_c`` — every class gets the same total weight.
    - ``"median_freq"``: ``w_c = median(f) / f_c`` (Eigen & Fergus 2015), the median over the
      classes with pixels.

    The weights are scaled so their mean over the classes with pixels is 1. Classes with no
    pixel in the split get weight 0: the split teaches nothing about them.

    Args:
        pixel_counts: Labelled pixels per class (ignore pixels excluded), e.g. the row sums of
            a confusion matrix or a dataset's class histogram.
        scheme: How counts become weights.

    Returns:
        One weight per class, as plain floats (JSON-ready, for the run's recipe).

    Raises:
        ValueError: Counts are not a non-empty 1-D sequence of finite non-negative numbers
            with at least one positive, or ``scheme`` is unknown.
    """
    raw = pixel_counts.detach().cpu().numpy() if isinstance(pixel_counts, Tensor) else pixel_counts
    counts = np.asarray(raw, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"pixel counts must be a 1-D sequence, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any() or not (counts > 0).any():
        raise ValueError(f"pixel counts must be non-negative with one positive, got {counts}")
    present = counts > 0
    freq = counts / counts.sum()
    inv = np.zeros_like(freq)
    inv[present] = 1.0 / freq[present]
    if scheme == "inverse_sqrt":
        weights = np.sqrt(inv)
    elif scheme == "inverse":
        weights = inv
    elif scheme == "median_freq":
        weights = np.median(freq[present]) * inv
    else:
        raise ValueError(
            f"unknown weighting scheme {scheme!r}; choose inverse_sqrt, inverse or median_freq"
        )
    weights = weights / weights[present].mean()
    return [float(w) for w in weights]
