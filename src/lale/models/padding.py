"""Run a network on inputs of any height and width.

Most segmentation networks need H and W to be multiples of their output stride (32 here).
``pad_to_multiple`` reflect-pads the bottom and right edges up to the next multiple and
``crop_to`` cuts the logits back, so the caller sees an output the size of its input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad ``x`` (``B×C×H×W``) at the bottom/right so H and W divide ``multiple``.

    Reflection needs the pad to be smaller than the side; very small inputs fall back to
    replicate padding for the part reflection cannot cover.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left ``height × width`` window of ``x``."""
    return x[..., :height, :width]


class PadToMultiple(nn.Module):
    """Wrap a network so it accepts any input size: pad to ``multiple``, run, crop back."""

    def __init__(self, model: nn.Module, multiple: int = 32) -> None:
        super().__init__()
        self.model = model
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return crop_to(self.model(pad_to_multiple(x, self.multiple)), h, w)
