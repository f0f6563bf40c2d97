"""The options of a preparation run, shared by its parts: :class:`PrepareOptions` and parsers.

:mod:`lale.data.prepare.build` runs a preparation with them, :mod:`lale.data.prepare.cut` cuts
patches as they say and :mod:`lale.data.prepare.summary` records them in ``prepare.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lale.data.io.rasters import SCALINGS, PrepareError, Scaling

__all__ = ["PrepareOptions", "parse_offset", "parse_split"]


@dataclass(frozen=True)
class PrepareOptions:
    """How :func:`prepare_dataset` cuts, filters and splits.

    Attributes:
        patch: Patch side in pixels.
        bands: 1-based band numbers of the imagery, in output order; exactly three give RGB PNG
            patches, any other count uint8 GeoTIFF patches.
        split: Train, val and test fractions (non-negative, summing to 1).
        seed: Seed of the block shuffle that decides the split.
        block: Split blocks are ``block×block`` patches of one tile.
        offset: DN offset added before dividing by 10000 (``None``: the ``BOA_ADD_OFFSET`` tag,
            else 0); ignored for ``uint8`` and float imagery.
        max_water: Patches with a larger water fraction are dropped.
        scaling: 8-bit rule: ``"truecolor"`` (ESA's rule, reflectance 0–0.2 → 0–255) or
            ``"aras400k"`` (each patch divided by its own maximum, ARAS400k's rule).
    """

    patch: int = 256
    bands: tuple[int, ...] = (4, 3, 2)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    block: int = 8
    offset: int | None = None
    max_water: float = 0.9
    scaling: Scaling = "truecolor"

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            known = ", ".join(SCALINGS)
            raise PrepareError(f"scaling must be one of {known}, got {self.scaling!r}")
        if self.patch < 1:
            raise PrepareError(f"patch must be at least 1 pixel, got {self.patch}")
        if not self.bands or min(self.bands) < 1:
            raise PrepareError(f"bands are 1-based band numbers, got {self.bands}")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise PrepareError(f"split needs 3 non-negative fractions summing to 1: {self.split}")
        if self.block < 1:
            raise PrepareError(f"block must be at least 1 patch, got {self.block}")
        if not 0 <= self.max_water <= 1:
            raise PrepareError(f"max_water must lie in [0, 1], got {self.max_water}")

    @property
    def image_format(self) -> Literal["png", "tif"]:
        """``png`` for three bands, else ``tif``."""
        return "png" if len(self.bands) == 3 else "tif"


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` → ``(0.8, 0.1, 0.1)``."""
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise PrepareError(f"split must be three fractions train,val,test, got {text!r}")
    return values[0], values[1], values[2]


def parse_offset(text: str) -> int | None:
    """``"auto"`` → ``None`` (from the tag), else the integer DN offset."""
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise PrepareError(f"offset must be 'auto' or an integer, got {text!r}") from None
