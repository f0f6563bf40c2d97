"""uint8 rasters written by rows and finished as Cloud-Optimized GeoTIFFs.

:class:`CogRows` receives rows top to bottom and writes them, in whole 256-row block bands (no
compressed block is written twice), into a hidden tiled GeoTIFF beside the target. Its
:meth:`~CogRows.finish` turns that file into a second hidden file in GDAL's COG layout (256²
tiles, DEFLATE, internal overviews down to one tile, resampled with ``mode`` for class maps and
``average`` for confidence and probabilities; colour table, band descriptions, scales, tags,
no-data and masks carried over) through the COG driver, which builds the overviews from the
file on disk, so memory stays bounded by GDAL's block cache. The caller renames
:attr:`CogRows.tmp` into place (:class:`~lale.inference.scene_outputs.SceneOutputs`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import rasterio.shutil
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window as RioWindow

from lale.atomic import staged_path
from lale.inference.scene import OUTPUT_BLOCK, Scene

__all__ = ["CogRows", "Resampling"]

Resampling = Literal["mode", "average"]
"""How overviews are computed: most frequent value (classes) or mean (scores)."""


def _sync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class CogRows:
    """A uint8 raster of ``count`` bands on the scene's grid, finished as a COG.

    Args:
        path: Final name (the caller renames :attr:`tmp` to it).
        scene: Size, CRS and transform (a scene without CRS gives a raster without one).
        count: Bands.
        resampling: Overview resampling.
        nodata: No-data value, or ``None`` to mark no-data with a per-dataset mask instead
            (rows then come with their validity to :meth:`write`).
        colors: ``256×3`` colour table of band 1, or ``None``.
        tags: Dataset tags.
        descriptions: One description per band.
        scale: Band scale (``value × scale`` is the quantity), recorded as band scale/offset.
    """

    def __init__(
        self,
        path: Path,
        scene: Scene,
        count: int,
        resampling: Resampling,
        nodata: int | None,
        colors: NDArray[np.uint8] | None = None,
        tags: dict[str, str] | None = None,
        descriptions: Sequence[str] | None = None,
        scale: float | None = None,
    ) -> None:
        self.path, self.resampling = path, resampling
        self.tmp = self._tiled = staged_path(path)
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "height": scene.height,
            "width": scene.width,
            "count": count,
            "dtype": "uint8",
            "crs": scene.crs,
            "transform": scene.transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": OUTPUT_BLOCK,
            "blockysize": OUTPUT_BLOCK,
            "compress": "deflate",
            "bigtiff": "if_safer",
        }
        self.masked = nodata is None
        with (
            warnings.catch_warnings(),
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        ):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.dst = rasterio.open(self._tiled, "w", **profile)
        try:
            if colors is not None:
                cmap = {i: (*map(int, colors[i]), 255) for i in range(256)}
                if nodata is not None:
                    cmap[nodata] = (0, 0, 0, 0)
                self.dst.write_colormap(1, cmap)
            if descriptions is not None:
                self.dst.descriptions = tuple(descriptions)
            if scale is not None:
                self.dst.scales = (scale,) * count
                self.dst.offsets = (0.0,) * count
            self.dst.update_tags(**(tags or {}))
        except BaseException:
            self.abort()
            raise
        self.pending: list[tuple[NDArray[np.uint8], NDArray[np.bool_] | None]] = []
        self.start = 0  # first scene row not yet written

    def _buffered(self) -> int:
        return sum(rows.shape[-2] for rows, _ in self.pending)

    def write(
        self, row: int, rows: NDArray[np.uint8], valid: NDArray[np.bool_] | None = None
    ) -> None:
        """Write ``rows`` (``h×W`` or ``count×h×W``) starting at scene ``row``.

        ``valid`` (``h×W``) is needed when no-data is a mask.
        """
        if row != self.start + self._buffered():
            raise ValueError(f"rows must arrive in order; got row {row}")
        if self.masked and valid is None:
            raise ValueError("a masked raster needs the rows' validity")
        self.pending.append((rows.reshape(-1, *rows.shape[-2:]), valid))
        buffered = self._buffered()
        if row + rows.shape[-2] == self.dst.height:
            self._flush(buffered)
        elif buffered >= OUTPUT_BLOCK:
            self._flush(buffered // OUTPUT_BLOCK * OUTPUT_BLOCK)

    def _flush(self, n: int) -> None:
        block = np.concatenate([rows for rows, _ in self.pending], axis=1)
        window = RioWindow(0, self.start, block.shape[2], n)
        self.dst.write(block[:, :n], window=window)
        mask = None
        if self.masked:
            mask = np.concatenate([v for _, v in self.pending if v is not None])
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                self.dst.write_mask(mask[:n].astype(np.uint8) * 255, window=window)
        self.pending = []
        if n < block.shape[1]:
            self.pending = [(block[:, n:], None if mask is None else mask[n:])]
        self.start += n

    def finish(self) -> None:
        """Close the tiled file and convert it into a COG at :attr:`tmp`."""
        self.dst.close()
        cog = staged_path(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                rasterio.shutil.copy(
                    self._tiled,
                    cog,
                    driver="COG",
                    compress="DEFLATE",
                    blocksize=OUTPUT_BLOCK,
                    resampling=self.resampling.upper(),
                    bigtiff="IF_SAFER",
                )
            _sync(cog)
        except BaseException:
            cog.unlink(missing_ok=True)
            raise
        self._tiled.unlink(missing_ok=True)
        self.tmp = cog

    def abort(self) -> None:
        """Remove the temporary files."""
        self.dst.close()
        self._tiled.unlink(missing_ok=True)
        self.tmp.unlink(missing_ok=True)
