"""Per-class area tables of a class map: pixels, percent of the valid pixels and km².

A pixel's area comes from the transform (projected CRS) or, in a geographic CRS, from each row's
exact ellipsoidal cell area; without a CRS only pixels and percent (docs/design.md#areas).
:class:`AreaCounter` adds up rows as they stream out of the predictor.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

from lale.atomic import write_bytes_atomic, write_json_atomic

__all__ = [
    "AreaCounter",
    "AreaMethod",
    "AreaTable",
    "row_areas_km2",
    "zone_area_m2",
]

AreaMethod = Literal["projected", "geodesic", "none"]
"""How pixel areas were found: map-plane area, ellipsoidal area per row, or not at all."""


def _pyproj_crs(crs: CRS) -> Any:
    try:
        import pyproj
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("areas of georeferenced scenes need pyproj: pip install pyproj") from err
    return pyproj.CRS.from_wkt(crs.to_wkt())


def _q(sin_phi: NDArray[np.float64], e: float) -> NDArray[np.float64]:
    """Authalic-latitude function ``q(φ)`` of an ellipsoid with eccentricity ``e``."""
    if e == 0.0:
        return 2.0 * sin_phi
    es = e * sin_phi
    return (1 - e * e) * (sin_phi / (1 - es * es) - np.log((1 - es) / (1 + es)) / (2 * e))


def zone_area_m2(
    lat1: NDArray[np.float64] | float,
    lat2: NDArray[np.float64] | float,
    dlon: float,
    a: float,
    f: float,
) -> NDArray[np.float64]:
    """Area (m²) of the cell between latitudes ``lat1``, ``lat2`` spanning ``dlon`` (degrees).

    Args:
        lat1: Latitude of one parallel, degrees (scalar or array).
        lat2: Latitude of the other parallel, degrees.
        dlon: Longitude extent, degrees.
        a: Semi-major axis of the ellipsoid, metres.
        f: Flattening of the ellipsoid.
    """
    e = math.sqrt(f * (2 - f))
    s1 = np.sin(np.radians(np.asarray(lat1, dtype=np.float64)))
    s2 = np.sin(np.radians(np.asarray(lat2, dtype=np.float64)))
    return np.abs(a * a * math.radians(abs(dlon)) * (_q(s2, e) - _q(s1, e)) / 2)


def row_areas_km2(
    crs: CRS | None, transform: Affine, height: int, width: int
) -> tuple[NDArray[np.float64] | None, AreaMethod]:
    """Ground area (km²) of one pixel of each row, and how it was found.

    Returns:
        ``(areas, method)``: ``areas`` has ``height`` values (all equal for a projected CRS),
        or is ``None`` without a CRS (method ``"none"``).
    """
    if crs is None:
        return None, "none"
    pcrs = _pyproj_crs(crs)
    if pcrs.is_geographic:
        to_deg = math.degrees(pcrs.axis_info[0].unit_conversion_factor)  # unit → radians → °
        rows = np.arange(height + 1, dtype=np.float64)
        if transform.b == 0 and transform.d == 0:  # north-up: rows are bounded by parallels
            lat = (transform.f + transform.e * rows) * to_deg
            geod = pcrs.get_geod()
            m2 = zone_area_m2(lat[:-1], lat[1:], transform.a * to_deg, geod.a, geod.f)
            return m2 / 1e6, "geodesic"
        return _rotated_geodesic(pcrs, transform, height, width, to_deg), "geodesic"
    if pcrs.is_projected:
        unit = pcrs.axis_info[0].unit_conversion_factor  # CRS unit → metres
        pixel_m2 = abs(transform.determinant) * unit * unit
        return np.full(height, pixel_m2 / 1e6), "projected"
    return None, "none"  # engineering or other local CRS: no ground area known


def _rotated_geodesic(
    pcrs: Any, transform: Affine, height: int, width: int, to_deg: float
) -> NDArray[np.float64]:
    """Geodesic polygon area (km²) of the middle pixel of each row of a rotated grid."""
    geod = pcrs.get_geod()
    c = width // 2
    out = np.empty(height)
    for r in range(height):
        cols, rows = [c, c + 1, c + 1, c], [r, r, r + 1, r + 1]
        t = transform
        lons = [(t.a * x + t.b * y + t.c) * to_deg for x, y in zip(cols, rows, strict=True)]
        lats = [(t.d * x + t.e * y + t.f) * to_deg for x, y in zip(cols, rows, strict=True)]
        out[r] = abs(geod.polygon_area_perimeter(lons, lats)[0]) / 1e6
    return out


@dataclass(frozen=True)
class AreaTable:
    """Pixels and areas per class of one class map.

    Attributes:
        names: Class names, by class index.
        pixels: Pixels predicted as each class (no-data excluded).
        km2: Area of each class in km², or ``None`` where the scene has no CRS.
        nodata_pixels: Pixels left out as no-data.
        method: How pixel areas were found.
    """

    names: tuple[str, ...]
    pixels: tuple[int, ...]
    km2: tuple[float, ...] | None
    nodata_pixels: int
    method: AreaMethod

    @property
    def valid_pixels(self) -> int:
        """Pixels with a prediction (the sum of :attr:`pixels`)."""
        return sum(self.pixels)

    @property
    def percent(self) -> tuple[float, ...]:
        """Share of the valid pixels per class, in percent (zeros if none is valid)."""
        total = self.valid_pixels
        return tuple(100.0 * p / total if total else 0.0 for p in self.pixels)

    def rows(self) -> list[dict[str, Any]]:
        """One dictionary per class: ``index, class, pixels, percent`` and ``km2`` if known."""
        out: list[dict[str, Any]] = []
        for k, (name, px, pct) in enumerate(
            zip(self.names, self.pixels, self.percent, strict=True)
        ):
            row: dict[str, Any] = {"index": k, "class": name, "pixels": px, "percent": pct}
            if self.km2 is not None:
                row["km2"] = self.km2[k]
            out.append(row)
        return out

    def to_dict(self, **context: Any) -> dict[str, Any]:
        """JSON-ready table with totals; ``context`` (input, CRS, …) goes first."""
        total = None if self.km2 is None else sum(self.km2)
        return {
            **context,
            "area_method": self.method,
            "valid_pixels": self.valid_pixels,
            "nodata_pixels": self.nodata_pixels,
            "total_km2": total,
            "classes": self.rows(),
        }

    def to_csv(self) -> str:
        """CSV text, one line per class (``km2`` column only where areas are known)."""
        fields = ["index", "class", "pixels", "percent"] + ([] if self.km2 is None else ["km2"])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            row["percent"] = f"{row['percent']:.4f}"
            if "km2" in row:
                row["km2"] = f"{row['km2']:.6f}"
            writer.writerow(row)
        return buf.getvalue()

    def to_json(self, **context: Any) -> str:
        """:meth:`to_dict` as indented UTF-8 JSON text (NaN and infinities refused)."""
        return (
            json.dumps(self.to_dict(**context), indent=2, ensure_ascii=False, allow_nan=False)
            + "\n"
        )

    def write(self, csv_path: Path, json_path: Path, context: Mapping[str, Any]) -> None:
        """Write the CSV and JSON tables (atomically)."""
        write_bytes_atomic(csv_path, self.to_csv().encode("utf-8"))
        write_json_atomic(json_path, self.to_dict(**context))


class AreaCounter:
    """Adds up class pixels and km² over the rows of a class map, strip by strip.

    Args:
        num_classes: Classes ``0 … num_classes − 1``; 255 is no-data, other values are refused.
        row_km2: Pixel area of each scene row (:func:`row_areas_km2`), or ``None``.
    """

    def __init__(self, num_classes: int, row_km2: NDArray[np.float64] | None) -> None:
        self.num_classes = num_classes
        self.row_km2 = row_km2
        self.pixels = np.zeros(num_classes, dtype=np.int64)
        self.km2 = np.zeros(num_classes, dtype=np.float64)
        self.nodata = 0

    @property
    def valid_pixels(self) -> int:
        """Pixels counted in some class so far."""
        return int(self.pixels.sum())

    def add(self, row: int, classes: NDArray[np.uint8]) -> None:
        """Count an ``n × W`` block of class indices (255 = no-data) starting at scene ``row``."""
        n = classes.shape[0]
        index = np.arange(n, dtype=np.int64)[:, None] * 256 + classes
        per_row = np.bincount(index.ravel(), minlength=n * 256).reshape(n, 256)
        k = self.num_classes
        if per_row[:, k:255].any():
            raise ValueError(f"class map holds values outside 0..{k - 1} and 255")
        self.pixels += per_row[:, :k].sum(axis=0)
        self.nodata += int(per_row[:, 255].sum())
        if self.row_km2 is not None:
            self.km2 += per_row[:, :k].T.astype(np.float64) @ self.row_km2[row : row + n]

    def table(self, names: Sequence[str], method: AreaMethod) -> AreaTable:
        """The counts so far as an :class:`AreaTable`."""
        km2 = None if self.row_km2 is None else tuple(float(v) for v in self.km2)
        return AreaTable(
            names=tuple(names),
            pixels=tuple(int(v) for v in self.pixels),
            km2=km2,
            nodata_pixels=self.nodata,
            method=method,
        )
