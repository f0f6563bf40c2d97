"""Batching samples of different sizes for a DataLoader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

__all__ = ["PadCollate"]


@dataclass(frozen=True)
class PadCollate:
    """Batch samples of different sizes: pad each to the largest height and width in the batch.

    Images are padded with 0 and masks with ``ignore_index`` (bottom and right), so padding is
    never scored; same-size samples come out as ``torch.stack`` would give them. Picklable, for
    DataLoader workers.

    Attributes:
        ignore_index: Label of the padded mask pixels.
    """

    ignore_index: int = 255

    def __call__(self, batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        h = max(img.shape[-2] for img, _ in batch)
        w = max(img.shape[-1] for img, _ in batch)
        c = batch[0][0].shape[0]
        images = batch[0][0].new_zeros((len(batch), c, h, w))
        masks = batch[0][1].new_full((len(batch), h, w), self.ignore_index)
        for i, (img, lab) in enumerate(batch):
            images[i, :, : img.shape[-2], : img.shape[-1]] = img
            masks[i, : lab.shape[-2], : lab.shape[-1]] = lab
        return images, masks
