"""How ``lale predict`` tiles, reads and writes a scene: :class:`PredictOptions`.

Shared by :mod:`lale.inference.predict`, which runs a scene with them, and
:mod:`lale.inference.input_plan`, which picks the bands and scaling they may override.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lale.errors import UsageError
from lale.inference.tiling import Blend
from lale.inference.vector_options import VectorOptions

__all__ = ["PredictOptions"]


@dataclass(frozen=True)
class PredictOptions:
    """How to tile, read and write a scene.

    Attributes:
        tile: Window side fed to the model (scenes smaller than this are padded).
        overlap: Pixels shared by neighbouring windows.
        batch_size: Windows per model call.
        blend: Weighting of overlapping windows (``"smooth"`` hides seams).
        bands: 1-based input bands in model order, overriding the run's selection.
        scale: Divisor of the raw samples, overriding the run's scaling
            (docs/design.md#bands-and-scaling).
        offset: Added to the raw samples before ``scale``; overrides the run's.
        confidence: Also write the confidence map (uint8 max softmax × 255, no-data 0).
        probabilities: Also write the per-class probabilities (uint8 softmax × 255, one band
            per class) and the confidence map.
        preview_size: Longest side of the preview PNG of raster inputs.
        vector: Also write the class map's polygons (format, sieve, simplification).
        bbox: Predict only this box (west, south, east, north) of a georeferenced input, read
            by windows; the outputs cover the box.
        bbox_crs: CRS of ``bbox`` (longitude/latitude by default).
    """

    tile: int = 256
    overlap: int = 64
    batch_size: int = 8
    blend: Blend = "smooth"
    bands: tuple[int, ...] | None = None
    scale: float | None = None
    offset: float | None = None
    confidence: bool = False
    probabilities: bool = False
    preview_size: int = 2048
    vector: VectorOptions | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: str = "EPSG:4326"

    @property
    def writes_confidence(self) -> bool:
        """Whether the confidence map is written (``confidence`` or ``probabilities``)."""
        return self.confidence or self.probabilities

    def __post_init__(self) -> None:
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise UsageError(
                f"need 0 <= overlap < tile, got tile {self.tile}, overlap {self.overlap}"
            )
        if self.batch_size < 1 or self.preview_size < 1:
            raise UsageError("batch_size and preview_size must be positive")
        if self.blend not in ("uniform", "smooth"):
            raise UsageError(f"blend must be 'uniform' or 'smooth', got {self.blend!r}")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise UsageError(f"bands are 1-based band numbers, got {self.bands}")
        if self.scale is not None and self.scale == 0:
            raise UsageError("scale must not be 0")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (all(np.isfinite(self.bbox)) and w < e and s < n):
                raise UsageError(
                    f"--bbox is west,south,east,north with west < east and south < north, "
                    f"got {w:g},{s:g},{e:g},{n:g}"
                )
