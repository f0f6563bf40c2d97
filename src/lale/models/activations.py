"""StarReLU, the activation of the MetaFormer baselines (Yu et al., 2022), and the act choice."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class StarReLU(nn.Module):
    """``s · relu(x)² + b`` with learnable scalars ``s`` and ``b``.

    Args:
        scale: Initial ``s`` (timm's default 1.0; the MetaFormer paper derives 0.8944 for
            unit-variance outputs under a standard-normal input).
        bias: Initial ``b`` (timm 0.0; paper -0.4472).
        learnable: Whether ``s`` and ``b`` are trained.
    """

    def __init__(self, scale: float = 1.0, bias: float = 0.0, learnable: bool = True) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale]), requires_grad=learnable)
        self.bias = nn.Parameter(torch.tensor([bias]), requires_grad=learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).pow(2) + self.bias


ActKind = Literal["starrelu", "gelu"]
"""``"starrelu"`` (LALE's own) or ``"gelu"`` (ConvMixer's and ViT's), for the norm-act ablation."""


def activation(kind: ActKind) -> nn.Module:
    """A fresh activation module of ``kind``."""
    if kind == "starrelu":
        return StarReLU()
    if kind == "gelu":
        return nn.GELU()
    raise ValueError(f"act must be 'starrelu' or 'gelu', got {kind!r}")
