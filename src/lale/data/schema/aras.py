"""ARAS400k class constants: the schema and the class indices.

ARAS400k masks are colour PNGs; class ``i`` is drawn in ``ARAS400K.colors[i]``. Pixels of any
other colour are not a class: they map to ``ignore_index`` and are counted, never folded into
class 0 (docs/design.md#classes). The schema itself is defined in
:mod:`lale.data.schema.classes`.
"""

from __future__ import annotations

from lale.data.schema.classes import ARAS400K, RGB, ClassSchema

__all__ = [
    "ARAS400K",
    "BARREN",
    "BUILT_UP",
    "CROP",
    "GRASS",
    "RGB",
    "SHRUB",
    "TREE",
    "WATER",
    "ClassSchema",
]

TREE, SHRUB, GRASS, CROP, BUILT_UP, BARREN, WATER = range(7)
"""ARAS400k class indices."""
