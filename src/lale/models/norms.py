"""RMSNorm for channel-first feature maps (tokens use ``torch.nn.RMSNorm``), and the norm choice."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

NormKind = Literal["rms", "classic"]
"""``"rms"``: RMSNorm on maps and tokens (LALE's own). ``"classic"``: BatchNorm on maps and
LayerNorm on tokens (ConvMixer's and ViT's originals), for the norm-act ablation."""


class RMSNorm2d(nn.Module):
    """RMSNorm over the channel axis of a ``B×C×H×W`` tensor.

    ``y = x / sqrt(mean_c(x²) + eps) · weight``: no mean subtraction and no bias (Zhang &
    Sennrich, 2019). Statistics are computed in float32 so bf16 autocast stays stable.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight.view(1, -1, 1, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


def norm2d(kind: NormKind, channels: int) -> nn.Module:
    """The norm of a ``B×C×H×W`` map: :class:`RMSNorm2d` or ``BatchNorm2d``."""
    if kind == "rms":
        return RMSNorm2d(channels)
    if kind == "classic":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'rms' or 'classic', got {kind!r}")


def token_norm(kind: NormKind, dim: int) -> nn.Module:
    """The norm of ``B×N×C`` tokens: ``RMSNorm`` or ``LayerNorm``."""
    if kind == "rms":
        return nn.RMSNorm(dim, eps=1e-6)
    if kind == "classic":
        return nn.LayerNorm(dim, eps=1e-6)
    raise ValueError(f"norm must be 'rms' or 'classic', got {kind!r}")
