"""Change between two class maps: transition matrix, gains and losses, and a change raster.

Map B is read on map A's grid: directly when the grids are the same, else through a
:class:`rasterio.vrt.WarpedVRT` with nearest-neighbour resampling (B's CRS, resolution or offset
may differ; pixels outside B become no-data). Both are read in strips of whole rows, so memory is
bounded by the strip, not the map. A pixel counts in the matrix only where both maps have a
class; the pixels where A, B or both have no data are counted apart. Areas follow
:func:`lale.inference.areas.row_areas_km2` on A's grid (pixels only without a CRS).

The change raster holds ``from × K + to`` (K classes) where both maps have a class, uint8 with
no-data 255 when ``K² ≤ 255``, else uint16 with no-data 65535. Its colour table shows a change in
the colour of the class gained and an unchanged pixel in a pale tint of its class.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lale.errors import DataError
from lale.inference.areas import row_areas_km2
from lale.maps.classmap import NODATA, ClassMap, check_values

__all__ = ["ChangeResult", "change_colours", "compare_maps", "same_classes"]

Progress = Callable[[int, int], None]
_STRIP_PIXELS = 1 << 22  # pixels per strip read from each map (at least one block row)
_BLOCK = 256  # side of the change raster's tiles; strips are whole rows of tiles
_PALE = 0.35  # share of the class colour in the tint of unchanged pixels


@dataclass(frozen=True)
class ChangeResult:
    """What changed from map A to map B.

    Attributes:
        names: Class names.
        pixels: ``K × K`` pixels going from class ``i`` (row, A) to class ``j`` (column, B).
        km2: The same in km², or ``None`` without a CRS.
        nodata_pixels: Pixels left out: ``{"a_only", "b_only", "both"}`` no-data counts.
        nodata_km2: Their areas, or ``None``.
        resampled: B was resampled onto A's grid.
        method: How pixel areas were found.
    """

    names: tuple[str, ...]
    pixels: NDArray[np.int64]
    km2: NDArray[np.float64] | None
    nodata_pixels: dict[str, int]
    nodata_km2: dict[str, float] | None
    resampled: bool
    method: str

    @property
    def measure(self) -> NDArray[np.float64]:
        """The matrix in km² where known, else in pixels."""
        return self.pixels.astype(np.float64) if self.km2 is None else self.km2

    def summary(self) -> list[dict[str, Any]]:
        """Per class: area in A and B, gains, losses and net change (in the matrix's unit)."""
        m = self.measure
        stay = np.diag(m)
        gains, losses = m.sum(axis=0) - stay, m.sum(axis=1) - stay
        return [
            {
                "index": k,
                "class": name,
                "a": float(m[k].sum()),
                "b": float(m[:, k].sum()),
                "unchanged": float(stay[k]),
                "gains": float(gains[k]),
                "losses": float(losses[k]),
                "net": float(gains[k] - losses[k]),
            }
            for k, name in enumerate(self.names)
        ]

    @property
    def unit(self) -> str:
        """``km2`` or ``pixels``."""
        return "pixels" if self.km2 is None else "km2"

    def to_dict(self, **context: Any) -> dict[str, Any]:
        """JSON-ready result; ``context`` (the maps, CRS, …) goes first."""
        m = self.measure
        return {
            **context,
            "area_method": self.method,
            "unit": self.unit,
            "b_resampled_to_a_grid": self.resampled,
            "classes": list(self.names),
            "matrix": m.tolist(),
            "matrix_pixels": self.pixels.tolist(),
            "changed": float(m.sum() - np.trace(m)),
            "compared": float(m.sum()),
            "nodata_pixels": self.nodata_pixels,
            "nodata_km2": self.nodata_km2,
            "per_class": self.summary(),
        }

    def matrix_csv(self) -> str:
        """The transition matrix as CSV: one row per class of A, one column per class of B."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([f"from \\ to ({self.unit})", *self.names])
        for name, row in zip(self.names, self.measure, strict=True):
            writer.writerow([name, *(f"{v:.6f}" for v in row)])
        return buf.getvalue()

    def classes_csv(self) -> str:
        """Gains, losses and net change per class as CSV."""
        rows = self.summary()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
        return buf.getvalue()


def same_classes(a: ClassMap, b: ClassMap) -> tuple[str, ...]:
    """The class list both maps share.

    Raises:
        DataError: The ``classes`` tags differ (or only one map has one).
    """
    if a.named_by_index and b.named_by_index:
        return a.names if len(a.names) >= len(b.names) else b.names
    if a.names != b.names or a.named_by_index != b.named_by_index:

        def shown(m: ClassMap) -> str:
            return "no 'classes' tag" if m.named_by_index else ", ".join(m.names)

        raise DataError(
            b.path, f"its classes ({shown(b)}) differ from those of {a.path} ({shown(a)})"
        )
    return a.names


def change_colours(colours: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``K² × 3`` colours of the codes ``from × K + to``: class gained, pale when unchanged."""
    k = len(colours)
    out = np.repeat(colours[None, :, :], k, axis=0).astype(np.float64)  # [from, to] → colour of to
    idx = np.arange(k)
    out[idx, idx] = _PALE * colours + (1 - _PALE) * 255.0
    return np.round(out).astype(np.uint8).reshape(k * k, 3)


def _same_grid(a: ClassMap, b: ClassMap) -> bool:
    return (
        a.crs == b.crs
        and (a.height, a.width) == (b.height, b.width)
        and a.transform.almost_equals(b.transform)
    )


def _bounds(m: ClassMap) -> tuple[float, float, float, float]:
    from rasterio.transform import array_bounds

    west, south, east, north = array_bounds(m.height, m.width, m.transform)
    return west, south, east, north


def _check_overlap(a: ClassMap, b: ClassMap) -> None:
    """Raise :class:`DataError` when ``b`` covers no part of ``a`` (in ``a``'s CRS)."""
    from rasterio.warp import transform_bounds

    ax0, ay0, ax1, ay1 = _bounds(a)
    bx0, by0, bx1, by1 = _bounds(b)
    if b.crs is not None and a.crs is not None and b.crs != a.crs:
        bx0, by0, bx1, by1 = transform_bounds(b.crs, a.crs, bx0, by0, bx1, by1, densify_pts=21)
    if min(ax1, bx1) <= max(ax0, bx0) or min(ay1, by1) <= max(ay0, by0):
        crs = "" if a.crs is None else f" in {a.crs.to_string()}"
        raise DataError(
            b.path,
            f"does not overlap {a.path}: its extent{crs} is ({bx0:.6g}, {by0:.6g}, {bx1:.6g}, "
            f"{by1:.6g}), A's is ({ax0:.6g}, {ay0:.6g}, {ax1:.6g}, {ay1:.6g})",
        )


def _open_b_on_a(src_b: Any, a: ClassMap, b: ClassMap) -> Any:
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if a.crs is None or b.crs is None:
        raise DataError(b.path, f"its grid differs from {a.path} and one of them has no CRS")
    _check_overlap(a, b)
    return WarpedVRT(
        src_b,
        crs=a.crs,
        transform=a.transform,
        width=a.width,
        height=a.height,
        resampling=Resampling.nearest,
        nodata=NODATA,
        src_nodata=NODATA,
    )


def _change_raster(path: Path, a: ClassMap, k: int, colours: NDArray[np.uint8]) -> Any:
    import rasterio

    dtype, nodata = ("uint8", 255) if k * k <= 255 else ("uint16", 65535)
    dst = rasterio.open(
        path, "w", driver="GTiff", height=a.height, width=a.width, count=1, dtype=dtype,
        crs=a.crs, transform=a.transform, nodata=nodata, tiled=True, blockxsize=_BLOCK,
        blockysize=_BLOCK, compress="deflate", bigtiff="if_safer",
    )  # fmt: skip
    cmap = {i: (*map(int, c), 255) for i, c in enumerate(change_colours(colours))}
    cmap[nodata] = (0, 0, 0, 0)
    dst.write_colormap(1, cmap)
    dst.update_tags(
        classes=json.dumps(list(a.names)), change_code=f"from * {k} + to", num_classes=str(k)
    )
    return dst


def compare_maps(
    a: ClassMap,
    b: ClassMap,
    raster_path: Path | None = None,
    progress: Progress | None = None,
) -> ChangeResult:
    """Transition matrix from ``a`` to ``b`` (on ``a``'s grid); the change raster if asked.

    Args:
        a: The earlier map.
        b: The later map.
        raster_path: Where to write the change raster (a staged path), or ``None``.
        progress: Called with ``(rows done, rows)``.

    Raises:
        DataError: Different classes, grids that cannot be matched or do not overlap, or values
            that are neither a class nor 255.
    """
    import rasterio
    from rasterio.windows import Window

    names = same_classes(a, b)
    k = len(names)
    colours = a.colours if len(a.colours) == k else b.colours
    row_km2, method = row_areas_km2(a.crs, a.transform, a.height, a.width)
    resampled = not _same_grid(a, b)
    pixels = np.zeros(256 * 256, dtype=np.int64)
    km2 = None if row_km2 is None else np.zeros(256 * 256, dtype=np.float64)
    strip = max(1, _STRIP_PIXELS // max(a.width, 1) // _BLOCK) * _BLOCK
    with rasterio.open(a.path) as src_a, rasterio.open(b.path) as src_b:
        read_b = _open_b_on_a(src_b, a, b) if resampled else src_b
        dst = None if raster_path is None else _change_raster(raster_path, a, k, colours)
        try:
            for row in range(0, a.height, strip):
                n = min(strip, a.height - row)
                window = Window(0, row, a.width, n)
                va, vb = src_a.read(1, window=window), read_b.read(1, window=window)
                index = va.astype(np.int32) * 256 + vb
                counts = np.bincount(index.ravel(), minlength=65536)
                pixels += counts
                if km2 is not None and row_km2 is not None:
                    weights = np.repeat(row_km2[row : row + n], a.width)
                    km2 += np.bincount(index.ravel(), weights=weights, minlength=65536)
                if dst is not None:
                    valid = (va != NODATA) & (vb != NODATA)
                    code = np.full(va.shape, dst.nodata, dtype=dst.dtypes[0])
                    code[valid] = va[valid].astype(np.int32) * k + vb[valid]
                    dst.write(code, 1, window=window)
                if progress is not None:
                    progress(row + n, a.height)
        finally:
            if dst is not None:
                dst.close()
            if resampled:
                read_b.close()
    full = pixels.reshape(256, 256)
    check_values(a.path, full.sum(axis=1), k)
    check_values(b.path, full.sum(axis=0), k)

    def nodata(m: NDArray[Any]) -> dict[str, Any]:
        return {
            "a_only": m[NODATA, :k].sum().item(),
            "b_only": m[:k, NODATA].sum().item(),
            "both": m[NODATA, NODATA].item(),
        }

    full_km2 = None if km2 is None else km2.reshape(256, 256)
    return ChangeResult(
        names=names,
        pixels=full[:k, :k].copy(),
        km2=None if full_km2 is None else full_km2[:k, :k].copy(),
        nodata_pixels=nodata(full),
        nodata_km2=None if full_km2 is None else nodata(full_km2),
        resampled=resampled,
        method=method,
    )
