"""ESA WorldCover 2021 codes and their ARAS400k classes (docs/design.md#classes).

Kept codes: 10 tree cover, 20 shrubland, 30 grassland, 40 cropland, 50 built-up, 60 bare /
sparse vegetation, 80 permanent water; remapped: 90 herbaceous wetland → 30, 100 moss and lichen
→ 30, 95 mangroves → 10, 70 snow and ice → 60. Class index = order of the kept codes (10 → 0 …
80 → 6). Code 0 is WorldCover's no-data and is never a class.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lale.data.io.rasters import OUTSIDE
from lale.data.schema.aras import ARAS400K, BARREN, BUILT_UP, CROP, GRASS, SHRUB, TREE, WATER

WORLDCOVER_TO_CLASS: dict[int, int] = {
    10: TREE,
    20: SHRUB,
    30: GRASS,
    40: CROP,
    50: BUILT_UP,
    60: BARREN,
    80: WATER,
    90: GRASS,  # herbaceous wetland
    95: TREE,  # mangroves
    100: GRASS,  # moss and lichen
    70: BARREN,  # snow and ice
}
"""ESA WorldCover code → ARAS400k class index."""
NODATA_CODE = 0
"""WorldCover's no-data code."""

NODATA_MARK, OUTSIDE_MARK, UNKNOWN_MARK = 253, 254, 255
"""Values of :data:`CODE_TO_CLASS` for no-data, no label raster (:data:`OUTSIDE`), other codes."""


def _lookup() -> NDArray[np.uint8]:
    lut = np.full(OUTSIDE + 1, UNKNOWN_MARK, dtype=np.uint8)
    for code, index in WORLDCOVER_TO_CLASS.items():
        lut[code] = index
    lut[NODATA_CODE] = NODATA_MARK
    lut[OUTSIDE] = OUTSIDE_MARK
    return lut


CODE_TO_CLASS = _lookup()
"""Lookup table over ``uint16`` warped codes: class index, or one of the ``*_MARK`` values."""


def remap_worldcover(codes: NDArray[np.integer]) -> NDArray[np.uint8]:
    """ARAS400k class indices of WorldCover codes; no-data and unknown codes → ignore (255)."""
    c = np.asarray(codes)
    inside = (c >= 0) & (c <= OUTSIDE)
    classes = CODE_TO_CLASS[np.where(inside, c, NODATA_CODE)]
    ok = inside & (classes < ARAS400K.num_classes)
    return np.where(ok, classes, ARAS400K.ignore_index).astype(np.uint8)
