"""Windowed raster reading for dataset preparation: opening, 8-bit scaling, label warping.

One window at a time: :func:`read_image_window` reads a window's selected bands and validity,
:func:`warp_labels` warps (nearest neighbour) the label rasters onto its grid whatever their CRS.
:func:`to_uint8` applies ESA's true-colour rule, reflectance 0–0.2 → 0–255, with the L2A
``BOA_ADD_OFFSET`` (docs/design.md#preparation); :func:`aras400k_uint8` ARAS400k's own rule,
each patch divided by its own maximum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from lale.data.io.remote import RemoteRaster, remote_problem
from lale.errors import DataError, UsageError, cause_text

Scaling = Literal["truecolor", "aras400k"]
"""8-bit rule of prepared patches: ESA's true-colour rule, or ARAS400k's per-patch maximum."""
SCALINGS: tuple[Scaling, ...] = ("truecolor", "aras400k")

Bounds = tuple[float, float, float, float]
"""``(left, bottom, right, top)`` in some CRS."""

QUANTIFICATION = 10_000
"""Sentinel-2 L2A quantification value: reflectance = (DN + offset) / 10000."""
REFLECTANCE_MAX = 0.2
"""Reflectance drawn as 255 (ESA's TCI rule)."""
_DN_WHITE = round(QUANTIFICATION * REFLECTANCE_MAX)  # 2000: the DN (plus offset) drawn as 255
OFFSET_TAG = "BOA_ADD_OFFSET"
"""Band or dataset tag read for the DN offset when it is not given."""

OUTSIDE = 65535
"""Warped label value of pixels that no label raster covers."""
INVALID = 65534
"""Warped label value of raster values that cannot be a code (negative, too large, fractional)."""


class PrepareError(UsageError):
    """Invalid preparation options (bad input files raise :class:`~lale.errors.DataError`)."""


def open_raster(path: Path | RemoteRaster) -> DatasetReader:
    """Open ``path`` (a file or a URL) for reading, or raise :class:`~lale.errors.DataError`."""
    try:
        with warnings.catch_warnings():  # a missing CRS is reported by the caller
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(str(path) if isinstance(path, RemoteRaster) else path)
    except (RasterioError, OSError) as err:
        if isinstance(path, RemoteRaster):
            raise DataError(path, remote_problem(err)) from None
        raise DataError(path, f"unreadable raster ({cause_text(err)})") from None


def band_offsets(src: DatasetReader, bands: Sequence[int], offset: int | None) -> tuple[int, ...]:
    """DN offset of each selected band: ``offset`` if given, else the ``BOA_ADD_OFFSET`` tag.

    The tag is looked up on the band, then on the dataset; without one the offset is 0. Offsets
    only apply to integer (digital number) imagery, never to ``uint8`` or float rasters.
    """
    if offset is not None:
        return tuple(offset for _ in bands)
    found: list[int] = []
    for band in bands:
        tag = src.tags(band).get(OFFSET_TAG, src.tags().get(OFFSET_TAG))
        try:
            found.append(0 if tag is None else round(float(tag)))
        except ValueError:
            raise DataError(src.name, f"{OFFSET_TAG} tag {tag!r} is not a number") from None
    return tuple(found)


def to_uint8(data: NDArray[np.generic], offsets: Sequence[int]) -> NDArray[np.uint8]:
    """8-bit image of ``bands×H×W`` raster values by the TCI rule (docs/design.md#preparation).

    Args:
        data: Raster values, one plane per band.
        offsets: DN offset per band (used for integer types other than ``uint8`` only).
    """
    if data.dtype == np.uint8:
        return np.asarray(data, dtype=np.uint8)
    if np.issubdtype(data.dtype, np.integer):
        wide = np.int64 if data.dtype.itemsize >= 4 else np.int32
        x = data.astype(wide) + np.asarray(offsets, dtype=wide).reshape(-1, 1, 1)
        np.clip(x, 0, _DN_WHITE, out=x)
        # (DN + offset) / 10000 / 0.2 * 255 = x * 255 / 2000: x * 255 <= 510000 is exact in
        # float32, and so are the quotient's halves, so rint rounds exactly as in float64.
        scaled = (x * 255).astype(np.float32) / np.float32(_DN_WHITE)
    elif np.issubdtype(data.dtype, np.floating):
        scaled = np.nan_to_num(data.astype(np.float64) / REFLECTANCE_MAX * 255, nan=0.0)
        np.clip(scaled, 0, 255, out=scaled)
    else:
        raise TypeError(f"cannot scale {data.dtype} imagery to 8 bits")
    return np.rint(scaled).astype(np.uint8)


def aras400k_uint8(
    data: NDArray[np.generic], valid: NDArray[np.bool_] | None = None
) -> NDArray[np.uint8]:
    """ARAS400k's rule: ``uint8(patch / patch.max() * 255)``, the max over every band and pixel.

    Raw values of all selected bands are divided by their one maximum (over ``valid`` pixels
    only, if given) and truncated to 8 bits as ``numpy.astype(uint8)`` does; invalid pixels and
    an all-zero patch give 0.
    """
    x = np.asarray(data, dtype=np.float64)
    ok = np.isfinite(x) if valid is None else np.isfinite(x) & valid[np.newaxis]
    peak = float(x[ok].max()) if ok.any() else 0.0
    if peak <= 0:
        return np.zeros(x.shape, dtype=np.uint8)
    scaled = np.where(ok, x, 0.0) / peak * 255
    return np.clip(scaled, 0, 255).astype(np.uint8)


def scale_to_uint8(
    data: NDArray[np.generic], offsets: Sequence[int], scaling: Scaling = "truecolor"
) -> NDArray[np.uint8]:
    """8-bit image of one patch by ``scaling`` (:func:`to_uint8` or :func:`aras400k_uint8`)."""
    return aras400k_uint8(data) if scaling == "aras400k" else to_uint8(data, offsets)


def _not_nodata(values: NDArray[np.generic], nodata: float) -> NDArray[np.bool_]:
    if np.issubdtype(values.dtype, np.floating):
        if math.isnan(nodata):
            return ~np.isnan(values)
        return values != values.dtype.type(nodata)  # compared in the band's type, as GDAL does
    return values != nodata


def read_image_window(
    src: DatasetReader, bands: Sequence[int], window: Window
) -> tuple[NDArray[np.generic], NDArray[np.bool_]]:
    """Raw values (``bands×H×W``) of one window, and where every selected band is valid.

    Validity follows the raster's own masks (nodata value, internal mask or alpha band); NaN is
    invalid in float rasters.
    """
    data = src.read(list(bands), window=window)
    valid = np.ones(data.shape[1:], dtype=bool)
    masked: list[int] = []  # bands whose mask GDAL must compute (internal mask, alpha band)
    all_flags = src.mask_flag_enums
    for i, band in enumerate(bands):
        flags = all_flags[band - 1]
        if flags == [MaskFlags.nodata]:  # GDAL's nodata mask, without reading the band twice
            valid &= _not_nodata(data[i], src.nodatavals[band - 1])
        elif flags != [MaskFlags.all_valid]:
            masked.append(band)
    if masked:
        valid &= (src.read_masks(masked, window=window) > 0).all(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return data, valid


def reproject_bounds(bounds: Bounds, src_crs: CRS, dst_crs: CRS) -> Bounds | None:
    """``bounds`` (in ``src_crs``) as bounds in ``dst_crs``; ``None`` if not computable there."""
    if src_crs != dst_crs:
        try:
            bounds = transform_bounds(src_crs, dst_crs, *bounds, densify_pts=21)
        except RasterioError:
            return None
    return bounds if all(math.isfinite(v) for v in bounds) else None


def overlaps(a: Bounds | None, b: Bounds | None) -> bool:
    """Whether two bounding boxes (same CRS) share some area."""
    if a is None or b is None:
        return False
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _source_window(src: DatasetReader, crs: CRS, bounds: Bounds) -> Window | None:
    """Window of ``src`` covering ``bounds`` (in ``crs``) with a one-pixel margin, or ``None``."""
    found = reproject_bounds(bounds, crs, src.crs)
    if found is None:
        return None
    left, bottom, right, top = found
    inv = ~src.transform
    xs, ys = np.array([left, right, left, right]), np.array([bottom, bottom, top, top])
    cols, rows = inv.a * xs + inv.b * ys + inv.c, inv.d * xs + inv.e * ys + inv.f
    c0 = max(math.floor(float(np.min(cols))) - 1, 0)
    c1 = min(math.ceil(float(np.max(cols))) + 1, src.width)
    r0 = max(math.floor(float(np.min(rows))) - 1, 0)
    r1 = min(math.ceil(float(np.max(rows))) + 1, src.height)
    if c0 >= c1 or r0 >= r1:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _as_codes(values: NDArray[np.generic], nodata: float | None) -> NDArray[np.uint16]:
    """Label raster values as ``uint16`` codes: declared nodata → 0, impossible codes → INVALID."""
    if values.dtype in (np.uint8, np.uint16):
        codes = values.astype(np.uint16)
        codes[codes >= INVALID] = INVALID
    else:
        v = values.astype(np.float64)
        ok = np.isfinite(v) & (v >= 0) & (v < INVALID) & (v == np.floor(v))
        codes = np.where(ok, v, INVALID).astype(np.uint16)
    if nodata is not None:
        codes[np.isnan(values) if math.isnan(nodata) else values == nodata] = 0
    return codes


def warp_labels(
    sources: Sequence[DatasetReader], crs: CRS, transform: Affine, shape: tuple[int, int]
) -> NDArray[np.uint16]:
    """Label codes on a window's grid (nearest neighbour), from every raster that covers it.

    Only each source's pixels around the window's footprint are read. Where sources overlap, a
    code other than 0 (no data) wins over 0, and an earlier source wins over a later one.

    Args:
        sources: Open single-band label rasters (band 1 is used), any CRS and resolution.
        crs: CRS of the target grid.
        transform: Affine transform of the target grid.
        shape: ``(height, width)`` of the target grid.

    Returns:
        ``uint16`` codes; 0 where a source has no data (code 0 or its declared nodata),
        :data:`OUTSIDE` where no source covers the pixel, :data:`INVALID` for impossible values.
    """
    out = np.full(shape, OUTSIDE, dtype=np.uint16)
    bounds: Bounds = array_bounds(shape[0], shape[1], transform)
    for src in sources:
        window = _source_window(src, crs, bounds)
        if window is None:
            continue
        codes = _as_codes(src.read(1, window=window), src.nodata)
        warped = np.full(shape, OUTSIDE, dtype=np.uint16)
        reproject(
            codes,
            warped,
            src_transform=src.window_transform(window),
            src_crs=src.crs,
            src_nodata=OUTSIDE,  # never a code: 0 is warped as a value, not skipped
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=OUTSIDE,
            init_dest_nodata=False,
            resampling=Resampling.nearest,
        )
        take = (warped != OUTSIDE) & ((out == OUTSIDE) | ((out == 0) & (warped != 0)))
        out[take] = warped[take]
    return out


@dataclass(frozen=True)
class RasterInfo:
    """What the preparation records about one input raster.

    Attributes:
        path: The file.
        crs: Its CRS as a string (EPSG code where there is one).
        width: Width in pixels.
        height: Height in pixels.
        count: Number of bands.
        dtype: Data type of band 1.
        resolution: Pixel size ``(x, y)`` in CRS units.
        descriptions: Band descriptions (e.g. ``B04``), ``None`` where a band has none.
    """

    path: Path
    crs: str
    width: int
    height: int
    count: int
    dtype: str
    resolution: tuple[float, float]
    descriptions: tuple[str | None, ...]

    @classmethod
    def of(cls, src: DatasetReader, path: Path) -> RasterInfo:
        """Info of an open raster."""
        crs = src.crs
        epsg = crs.to_epsg() if crs is not None else None
        name = f"EPSG:{epsg}" if epsg is not None else (crs.to_string() if crs else "none")
        return cls(
            path=path,
            crs=name,
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=src.dtypes[0],
            resolution=(float(src.res[0]), float(src.res[1])),
            descriptions=tuple(src.descriptions),
        )
