"""Tiny real GeoTIFF fixtures, made by code in ``tmp_path`` (in the spirit of torchgeo's
``tests/data/*/data.py``): a real CRS and transform, and the nodata, dtype and band count the
test asks for.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning

UTM_35N = "EPSG:32635"
"""UTM zone 35N, the default CRS."""
UTM_10M = Affine(10, 0, 500_000, 0, -10, 4_500_000)
"""10 m pixels, north up, in the middle of a UTM zone: the default transform."""


def write_geotiff(
    path: Path,
    data: NDArray[Any],
    *,
    crs: Any = UTM_35N,
    transform: Affine = UTM_10M,
    nodata: float | None = None,
    mask: NDArray[Any] | None = None,
    descriptions: Sequence[str | None] | None = None,
    tags: Mapping[str, Any] | None = None,
    **profile: Any,
) -> Path:
    """Write ``data`` (bands × rows × cols, its dtype kept) as a GeoTIFF and return ``path``.

    Args:
        path: The file; missing parent folders are created.
        data: The samples.
        crs: CRS of the file; ``None`` writes a file without one (the warning is silenced).
        transform: Pixel-to-CRS transform.
        nodata: The nodata value, or ``None``.
        mask: An internal per-dataset mask (0 = no data), written with the data.
        descriptions: Band descriptions (e.g. ``("B02", "B03", "B04")``).
        tags: Dataset tags (e.g. ``{"BOA_ADD_OFFSET": -1000}``).
        profile: Further creation options (``tiled=True``, ``blockxsize=32``, ...).
    """
    count, height, width = data.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": np.dtype(data.dtype).name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        **profile,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # crs=None on purpose
        with (
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
            rasterio.open(path, "w", **profile) as dst,
        ):
            dst.write(data)
            if mask is not None:
                dst.write_mask(mask)
            if descriptions is not None:
                dst.descriptions = tuple(descriptions)
            if tags:
                dst.update_tags(**tags)
    return path
