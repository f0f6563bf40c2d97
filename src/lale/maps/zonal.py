"""Area of every class in every zone of a class map, partial pixels weighted by coverage.

exactextract gives, for each zone, the cells it touches and the fraction of each cell it covers
(``cell_id``, ``coverage``, ``values``, no-data cells included). A cell counts for
``coverage × cell area``, the cell area being the one of :func:`lale.inference.areas.row_areas_km2`
— the pixel area in the projection's units for a projected CRS (map-plane area, as ``lale
predict``'s area table; not equal-area for UTM and the like), the ellipsoidal area of the row's
cells for a geographic CRS, none without a CRS (then coverage-weighted pixels only). Each zone is
reduced to per-class sums as soon as exactextract has it, so memory is bounded by the largest
zone, not by the number of zones. :func:`map_areas` gives the whole map's table, by blocks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lale.errors import DataError
from lale.inference.areas import AreaCounter, AreaTable, row_areas_km2
from lale.maps.classmap import NODATA, ClassMap, check_values
from lale.maps.zones import Zone

__all__ = ["ZonalTable", "ZoneAreas", "map_areas", "zonal_areas"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ZoneAreas:
    """One zone's classes.

    Attributes:
        name: The zone's name.
        pixels: Coverage-weighted pixels of each class.
        km2: Area of each class (km²), or ``None`` without a CRS.
        nodata_pixels: Coverage-weighted no-data pixels inside the zone.
        nodata_km2: Their area (km²), or ``None``.
    """

    name: str
    pixels: NDArray[np.float64]
    km2: NDArray[np.float64] | None
    nodata_pixels: float
    nodata_km2: float | None

    @property
    def measure(self) -> NDArray[np.float64]:
        """km² where known, else pixels."""
        return self.pixels if self.km2 is None else self.km2

    @property
    def percent(self) -> NDArray[np.float64]:
        """Share of the zone's classified area per class (zeros if none)."""
        total = float(self.measure.sum())
        return 100.0 * self.measure / total if total > 0 else np.zeros_like(self.measure)

    @property
    def on_map(self) -> bool:
        """Whether the zone covers any map cell (classified or no-data)."""
        return float(self.pixels.sum()) + self.nodata_pixels > 0


@dataclass(frozen=True)
class ZonalTable:
    """Areas of every class in every zone."""

    names: tuple[str, ...]
    zones: tuple[ZoneAreas, ...]
    method: str

    def to_dict(self, **context: Any) -> dict[str, Any]:
        """JSON-ready table; ``context`` (map, zones file, CRS, …) goes first."""
        out = []
        for z in self.zones:
            classes = []
            for k, name in enumerate(self.names):
                row: dict[str, Any] = {"index": k, "class": name, "pixels": float(z.pixels[k])}
                if z.km2 is not None:
                    row["km2"] = float(z.km2[k])
                row["percent"] = float(z.percent[k])
                classes.append(row)
            out.append(
                {
                    "zone": z.name,
                    "on_map": z.on_map,
                    "valid_km2": None if z.km2 is None else float(z.km2.sum()),
                    "valid_pixels": float(z.pixels.sum()),
                    "nodata_km2": z.nodata_km2,
                    "nodata_pixels": z.nodata_pixels,
                    "classes": classes,
                }
            )
        return {**context, "area_method": self.method, "zones": out}

    def to_csv(self) -> str:
        """CSV text, one line per zone: totals, then ``CLASS km2`` and ``CLASS %`` columns."""
        unit = "pixels" if self.method == "none" else "km2"
        head = ["zone", f"valid_{unit}", f"nodata_{unit}"]
        head += [f"{n} {unit}" for n in self.names] + [f"{n} %" for n in self.names]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(head)
        for z in self.zones:
            nodata = z.nodata_pixels if z.nodata_km2 is None else z.nodata_km2
            values = [float(z.measure.sum()), nodata, *z.measure.tolist()]
            writer.writerow(
                [z.name, *(f"{v:.6f}" for v in values), *(f"{p:.4f}" for p in z.percent)]
            )
        return buf.getvalue()


class _Sums:
    """Per-zone class sums, filled by the writer :func:`_reducing_writer` makes."""

    def __init__(self, classmap: ClassMap, row_km2: NDArray[np.float64] | None) -> None:
        self.width, self.row_km2 = classmap.width, row_km2
        self.results: dict[int, tuple[NDArray[np.float64], NDArray[np.float64] | None]] = {}
        self.value_counts = np.zeros(256, dtype=np.int64)

    def add(self, props: dict[str, Any]) -> None:
        """Reduce one zone's ``cell_id``, ``coverage`` and ``values`` arrays to class sums."""
        values = np.asarray(props["values"], dtype=np.int64)
        coverage = np.asarray(props["coverage"], dtype=np.float64)
        self.value_counts += np.bincount(values, minlength=256)[:256]
        pixels = np.bincount(values, weights=coverage, minlength=256)[:256].astype(np.float64)
        km2 = None
        if self.row_km2 is not None:
            rows = np.asarray(props["cell_id"], dtype=np.int64) // self.width
            weights = coverage * self.row_km2[rows]
            km2 = np.bincount(values, weights=weights, minlength=256)[:256].astype(np.float64)
        self.results[int(props["zone_index"])] = (pixels, km2)


def _reducing_writer(sums: _Sums) -> Any:
    """An exactextract writer that hands each zone to ``sums`` instead of keeping its arrays."""
    from exactextract.feature import JSONFeature
    from exactextract.writer import JSONWriter

    class ReducingWriter(JSONWriter):
        def write(self, feature: Any) -> None:
            f = JSONFeature()
            feature.copy_to(f)
            sums.add(f.feature["properties"])

    return ReducingWriter()


def zonal_areas(
    classmap: ClassMap, zones: Sequence[Zone], progress: Progress | None = None
) -> ZonalTable:
    """Area (km²) and coverage-weighted pixels of every class in every zone.

    Zones without geometry or outside the map get zeros (:attr:`ZoneAreas.on_map` is false).

    Raises:
        DataError: A rotated map grid, or pixel values that are neither a class nor 255.
    """
    import rasterio
    from exactextract import exact_extract
    from exactextract.feature import JSONFeatureSource
    from exactextract.raster import RasterioRasterSource

    cm = classmap
    row_km2, method = row_areas_km2(cm.crs, cm.transform, cm.height, cm.width)
    features = [
        {
            "type": "Feature",
            "properties": {"zone_index": i},
            "geometry": z.geometry.__geo_interface__,
        }
        for i, z in enumerate(zones)
        if z.geometry is not None
    ]
    sums = _Sums(cm, row_km2)
    if features:

        def step(fraction: float, _message: str) -> None:
            if progress is not None:
                progress(round(fraction * len(features)), len(features))

        ops = [f"{op}(default_value={NODATA})" for op in ("cell_id", "coverage", "values")]
        with rasterio.open(cm.path) as src:
            try:
                raster = RasterioRasterSource(src)
            except ValueError as err:
                raise DataError(cm.path, f"cannot compute zonal areas: {err}") from None
            exact_extract(
                raster,
                JSONFeatureSource(features, srs_wkt=None if cm.crs is None else cm.crs.wkt),
                ops,
                include_cols=["zone_index"],
                output=_reducing_writer(sums),
                progress=step,
            )
    check_values(cm.path, sums.value_counts, cm.num_classes)
    k = cm.num_classes
    empty = np.zeros(256)
    rows = []
    for i, zone in enumerate(zones):
        pixels, km2 = sums.results.get(i, (empty, None if row_km2 is None else empty))
        rows.append(
            ZoneAreas(
                name=zone.name,
                pixels=pixels[:k].copy(),
                km2=None if km2 is None else km2[:k].copy(),
                nodata_pixels=float(pixels[NODATA]),
                nodata_km2=None if km2 is None else float(km2[NODATA]),
            )
        )
    return ZonalTable(names=cm.names, zones=tuple(rows), method=method)


def map_areas(classmap: ClassMap, progress: Progress | None = None) -> AreaTable:
    """The whole map's area table (:class:`~lale.inference.areas.AreaTable`), read by blocks.

    Raises:
        DataError: Pixel values that are neither a class nor 255.
    """
    import rasterio
    from rasterio.windows import Window

    cm = classmap
    row_km2, method = row_areas_km2(cm.crs, cm.transform, cm.height, cm.width)
    counter = AreaCounter(cm.num_classes, row_km2)
    strip = max(1, (1 << 22) // max(cm.width, 1))
    with rasterio.open(cm.path) as src:
        for row in range(0, cm.height, strip):
            n = min(strip, cm.height - row)
            block = src.read(1, window=Window(0, row, cm.width, n))
            try:
                counter.add(row, block)
            except ValueError:
                check_values(
                    Path(cm.path), np.bincount(block.ravel(), minlength=256), cm.num_classes
                )
                raise
            if progress is not None:
                progress(row + n, cm.height)
    return counter.table(cm.names, method)
