"""ARAS400k class constants: names, indices, mask colours and the ignore index.

ARAS400k masks are colour PNGs; class ``i`` is drawn in ``colors[i]``. Pixels of any other colour
are not a class: they map to ``ignore_index`` and are counted, never folded into class 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassSchema:
    """A segmentation class scheme.

    Attributes:
        names: Class names; the position is the class index.
        colors: Mask colour (R, G, B) of each class, same order as ``names``.
        ignore_index: Label value for pixels that belong to no class (unknown mask colours).
    """

    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_index: int = 255

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(f"{len(self.names)} names but {len(self.colors)} colours")
        if len(set(self.colors)) != len(self.colors):
            raise ValueError("class colours must be distinct")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < len(self.names):
            raise ValueError(f"ignore_index {self.ignore_index} collides with a class index")

    @property
    def num_classes(self) -> int:
        """Number of classes (the ignore index excluded)."""
        return len(self.names)

    def palette(self) -> NDArray[np.uint8]:
        """The colours as a ``num_classes × 3`` uint8 array."""
        return np.asarray(self.colors, dtype=np.uint8).reshape(-1, 3)

    def labels_to_rgb(self, labels: NDArray[np.integer]) -> NDArray[np.uint8]:
        """Colour mask (``H×W×3`` uint8) of a label map; ignore pixels become black."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = self.palette()
        idx = np.asarray(labels)
        if idx.dtype != np.uint8:
            idx = np.where((idx >= 0) & (idx < 256), idx, self.ignore_index).astype(np.uint8)
        return np.take(lut, idx, axis=0)

    def rgb_to_labels(self, mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Label map (``H×W`` uint8) of a colour mask; unknown colours become ``ignore_index``."""
        rgb = np.asarray(mask, dtype=np.uint32)[..., :3]
        key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pal = self.palette().astype(np.uint32)
        pal_key = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        order = np.argsort(pal_key)
        pos = np.clip(np.searchsorted(pal_key[order], key), 0, len(order) - 1)
        found = pal_key[order][pos] == key
        return np.where(found, order[pos], self.ignore_index).astype(np.uint8)


ARAS400K = ClassSchema(
    names=("Tree", "Shrub", "Grass", "Crop", "Built-up", "Barren", "Water"),
    colors=(
        (0, 100, 0),
        (255, 182, 193),
        (154, 205, 50),
        (255, 215, 0),
        (139, 69, 19),
        (211, 211, 211),
        (0, 0, 255),
    ),
    ignore_index=255,
)
"""The ARAS400k classes (ESA WorldCover 2021, remapped as in DESIGN.md §3)."""

TREE, SHRUB, GRASS, CROP, BUILT_UP, BARREN, WATER = range(7)
"""ARAS400k class indices."""
