"""LALE's all-MLP multi-scale decoder (SegFormer-style, RMSNorm + StarReLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.activations import ActKind, activation
from lale.models.norms import NormKind, norm2d


class AllMLPDecoder(nn.Module):
    """Fuse encoder features of any strides into per-pixel logits at the finest stride.

    Per feature a 1×1 projection to ``dim`` (applied before resizing, where it is cheapest),
    bilinear resize to the first feature's size, concatenation, then
    ``1×1 fuse · RMSNorm2d · StarReLU · dropout · 1×1 classifier``; without ``fuse`` the
    concatenation goes through dropout straight to the classifier. The decoder knows only the
    channel counts it is given, never which encoder produced them.

    Args:
        in_channels: Channels of each encoder feature, finest first.
        dim: Common projection width ``D``.
        num_classes: Output logit channels.
        dropout: Dropout probability before the classifier.
        norm: Norm after the fuse layer (:data:`~lale.models.norms.NormKind`).
        act: Activation after it (:data:`~lale.models.activations.ActKind`).
        fuse: Keep the fuse layer (its normalisation and activation with it).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        dim: int,
        num_classes: int,
        dropout: float = 0.1,
        norm: NormKind = "rms",
        act: ActKind = "starrelu",
        fuse: bool = True,
    ) -> None:
        super().__init__()
        concat = dim * len(in_channels)
        self.projections = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.fuse = nn.Conv2d(concat, dim, 1, bias=False) if fuse else None
        self.norm = norm2d(norm, dim) if fuse else None
        self.act = activation(act)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(dim if fuse else concat, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        projected = [
            F.interpolate(proj(f), size=size, mode="bilinear", align_corners=False)
            if f.shape[-2:] != size
            else proj(f)
            for proj, f in zip(self.projections, features, strict=True)
        ]
        x = torch.cat(projected, dim=1)
        if self.fuse is not None and self.norm is not None:
            x = self.act(self.norm(self.fuse(x)))
        return self.classifier(self.dropout(x))
