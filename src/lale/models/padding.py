"""Run a network on inputs of any height and width: one padding rule, written once.

Inputs are padded at the bottom and right, by reflection unless a pad is not smaller than its
side (reflection cannot cover it), then by replicating the edge. Models say how they pad their
input through an ``input_padding`` attribute (:class:`InputPadding`), which the exporter reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lale.inference.pad import PadMode, pad_mode

__all__ = [
    "AnySize",
    "InputPadding",
    "PadMode",
    "crop_to",
    "pad_bottom_right",
    "pad_mode",
    "pad_to_multiple",
]


def pad_bottom_right(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad ``x`` (``…×H×W``) by ``pad_h`` rows at the bottom and ``pad_w`` columns at the right.

    The mode is :func:`pad_mode`'s; without padding ``x`` itself is returned.
    """
    if pad_h == 0 and pad_w == 0:
        return x
    h, w = x.shape[-2:]
    return F.pad(x, (0, pad_w, 0, pad_h), mode=pad_mode(pad_h, pad_w, h, w))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``x`` (``B×C×H×W``) at the bottom/right so H and W divide ``multiple``."""
    h, w = x.shape[-2:]
    return pad_bottom_right(x, (-h) % multiple, (-w) % multiple)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left ``height × width`` window of ``x``."""
    return x[..., :height, :width]


@dataclass(frozen=True)
class InputPadding:
    """How a model pads its input inside ``forward`` before cropping its logits back.

    Attributes:
        multiple: H and W are padded up to a multiple of this.
        min_size: Smallest H and W the network accepts; smaller sides are padded up to it.
        max_size: Largest H and W the network accepts (fixed-size networks); ``None``: any.
    """

    multiple: int = 32
    min_size: int = 0
    max_size: int | None = None

    @property
    def any_size(self) -> bool:
        """Whether every side is padded to the next multiple and nothing else (no bounds)."""
        return self.min_size == 0 and self.max_size is None

    def padded_size(self, size: int) -> int:
        """The side length an input side of ``size`` is padded to.

        Raises:
            ValueError: ``size`` exceeds :attr:`max_size`.
        """
        # Rounded up with ``%`` and no max() unless a minimum is set: under ONNX export
        # ``size`` is symbolic, and the ceil-division form traced as the traced size's constant.
        padded = size + (-size) % self.multiple
        if self.min_size:
            padded = max(padded, self.min_size)
        if self.max_size is not None and padded > self.max_size:
            raise ValueError(
                f"input side {size} exceeds this model's fixed size {self.max_size}; "
                "use tiled inference or rebuild it with a larger img_size"
            )
        return padded


class AnySize(nn.Module):
    """Run a segmentation network on inputs of any height and width.

    Pads ``B x C x H x W`` at the bottom/right (see :mod:`lale.models.padding`) to the smallest
    size that is at least ``min_size`` and a multiple of ``multiple``, runs ``model`` and crops
    its logits back to ``H x W``.

    Args:
        model: The wrapped network (kept as ``.model``).
        multiple: H and W are padded to a multiple of this.
        min_size: Smallest H and W the network accepts (e.g. PAN's pyramid pooling).
        max_size: Largest H and W the network accepts (fixed-size networks); ``None``: any.

    Attributes:
        input_padding: The three numbers above, as :class:`~lale.models.padding.InputPadding`.
    """

    def __init__(
        self, model: nn.Module, multiple: int = 32, min_size: int = 0, max_size: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.input_padding = InputPadding(multiple, min_size, max_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = self.input_padding.padded_size
        x = pad_bottom_right(x, size(h) - h, size(w) - w)
        return crop_to(self.model(x), h, w)
