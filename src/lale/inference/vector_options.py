"""How ``lale predict --vector`` polygonises a class map: format, sieve, simplification.

Kept apart from :mod:`lale.inference.vectorize` so that option parsing loads no GIS library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lale.errors import UsageError

__all__ = ["AreaUnit", "VectorFormat", "VectorOptions", "parse_min_area"]

VectorFormat = Literal["gpkg", "geojson"]
"""GeoPackage or GeoJSON (RFC 7946 asks for WGS 84; lale keeps the map's CRS and declares it)."""
AreaUnit = Literal["m2", "px"]
"""Unit of ``--min-area``: square metres or pixels."""

_MIN_AREA = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(m2|m²|px)\s*$")


def parse_min_area(text: str | None) -> tuple[float, AreaUnit]:
    """``"500m2"`` → ``(500.0, "m2")``, ``"4px"`` → ``(4.0, "px")``; ``None`` → no sieve.

    Raises:
        UsageError: Not a non-negative number followed by ``m2`` or ``px``.
    """
    if text is None:
        return 0.0, "px"
    match = _MIN_AREA.match(text)
    if match is None:
        raise UsageError(
            f"--min-area must be a number followed by m2 or px (e.g. 500m2, 4px), got {text!r}"
        )
    return float(match[1]), "px" if match[2] == "px" else "m2"


@dataclass(frozen=True)
class VectorOptions:
    """Polygons of the class map.

    Attributes:
        format: ``"gpkg"`` or ``"geojson"``.
        min_area: Connected regions smaller than this are merged into their largest neighbour
            first (``rasterio.features.sieve``); 0 keeps every region.
        min_area_unit: Unit of ``min_area``.
        simplify: Simplification tolerance in map units (``shapely.coverage_simplify``,
            Visvalingam–Whyatt; shared edges kept shared), or ``None``.
        block_rows: Rows of the class map polygonised at a time.
    """

    format: VectorFormat = "gpkg"
    min_area: float = 0.0
    min_area_unit: AreaUnit = "px"
    simplify: float | None = None
    block_rows: int = 1024

    def __post_init__(self) -> None:
        if self.format not in ("gpkg", "geojson"):
            raise UsageError(f"--vector must be gpkg or geojson, got {self.format!r}")
        if not self.min_area >= 0:
            raise UsageError(f"--min-area must not be negative, got {self.min_area}")
        if self.simplify is not None and not self.simplify > 0:
            raise UsageError(f"--simplify must be a positive distance, got {self.simplify}")
        if self.block_rows < 1:
            raise UsageError(f"block_rows must be positive, got {self.block_rows}")

    @property
    def suffix(self) -> str:
        """File suffix of the layer: ``classes.gpkg`` or ``classes.geojson``."""
        return f"classes.{self.format}"
