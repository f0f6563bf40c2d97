"""The padding rule of :mod:`lale.models.padding` on numpy arrays, for torch-free inference.

Inputs are padded at the bottom and right, by reflection unless a pad is not smaller than its
side, then by replicating the edge; numpy's ``"reflect"`` and ``"edge"`` are PyTorch's
``"reflect"`` and ``"replicate"``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["PadMode", "pad_bottom_right", "pad_mode"]

PadMode = Literal["reflect", "replicate"]


def pad_mode(pad_h: int, pad_w: int, h: int, w: int) -> PadMode:
    """How to pad an ``h × w`` image by ``pad_h`` rows and ``pad_w`` columns.

    ``"reflect"`` while both pads are smaller than their sides, else ``"replicate"`` (the edge
    value repeated; numpy calls it ``"edge"``).
    """
    return "reflect" if pad_h < h and pad_w < w else "replicate"


def pad_bottom_right(x: NDArray[Any], pad_h: int, pad_w: int) -> NDArray[Any]:
    """Pad ``x`` (``…×H×W``) by ``pad_h`` rows at the bottom and ``pad_w`` columns at the right.

    The mode is :func:`pad_mode`'s; without padding ``x`` itself is returned.
    """
    if pad_h == 0 and pad_w == 0:
        return x
    h, w = x.shape[-2:]
    widths = [(0, 0)] * (x.ndim - 2) + [(0, pad_h), (0, pad_w)]
    if pad_mode(pad_h, pad_w, h, w) == "reflect":
        return np.pad(x, widths, mode="reflect")
    return np.pad(x, widths, mode="edge")
