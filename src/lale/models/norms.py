"""RMSNorm for channel-first feature maps (tokens use ``torch.nn.RMSNorm``)."""

from __future__ import annotations

import torch
from torch import nn


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
