"""Scene input by windows: what the predictor reads.

:func:`open_scene` reads a GeoTIFF window by window (rasterio) or decodes a PNG/JPEG once
(Pillow); :meth:`Scene.read` returns a window's bands and where they hold data.
:class:`~lale.inference.scene_outputs.SceneOutputs` writes the outputs (docs/design.md#outputs).
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.windows import Window as RioWindow

from lale.data.io import PIL_READ_ERRORS, png16_array
from lale.data.io.rasters import band_offsets, open_raster, read_image_window
from lale.data.io.remote import RemoteRaster, as_raster_source, remote_env, remote_problem
from lale.errors import DataError, cause_text
from lale.inference.tiling import Window

if TYPE_CHECKING:
    from lale.inference.inputs import StacInput

__all__ = [
    "OUTPUT_BLOCK",
    "PICTURE_SUFFIXES",
    "CroppedScene",
    "PictureScene",
    "RasterScene",
    "Scene",
    "bbox_window",
    "block_cache_bytes",
    "open_scene",
]

PICTURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""Inputs read through Pillow (case-insensitive); everything else goes through rasterio."""
OUTPUT_BLOCK = 256
"""Block side of the GeoTIFFs prediction writes (and rows buffered before a write)."""


class Scene(ABC):
    """An input image, read by windows.

    Attributes:
        path: The file, the URL of a remote raster, or a STAC item's bands.
        height: Rows.
        width: Columns.
        count: Image bands (an alpha band or channel is a mask, not counted).
        dtype: numpy name of the sample type.
        crs: Coordinate reference system, ``None`` if the file has none.
        transform: Pixel → CRS affine transform (identity without georeference).
        tags: Metadata the class map carries besides lale's own (a STAC item's id, datetime).
    """

    path: Path | RemoteRaster | StacInput
    height: int
    width: int
    count: int
    dtype: str
    crs: CRS | None = None
    transform: Affine = Affine.identity()
    tags: dict[str, str] = {}  # noqa: RUF012 - read-only default; subclasses assign their own

    @abstractmethod
    def read(self, bands: Sequence[int], window: Window) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """Selected 1-based ``bands`` of ``window``: ``(bands × h × w samples, h × w valid)``."""

    def dn_offsets(self, bands: Sequence[int]) -> tuple[int, ...]:
        """Sentinel-2 DN offset (``BOA_ADD_OFFSET``) of each band; 0 where none is declared."""
        return tuple(0 for _ in bands)

    def close(self) -> None:  # noqa: B027 - nothing to release unless a subclass holds a file
        """Release the file."""

    def __enter__(self) -> Scene:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RasterScene(Scene):
    """A raster opened through rasterio (GeoTIFF of any size, band count and sample type).

    A remote raster (:class:`~lale.data.io.remote.RemoteRaster`) is read with
    :data:`~lale.data.io.remote.GDAL_REMOTE_OPTIONS` set until :meth:`close`.
    """

    def __init__(self, path: Path | RemoteRaster) -> None:
        self.path = path
        self._env = contextlib.ExitStack()
        if isinstance(path, RemoteRaster):
            self._env.enter_context(remote_env())
        try:
            self.src = open_raster(path)
        except BaseException:
            self._env.close()
            raise
        self.height, self.width, self.count = self.src.height, self.src.width, self.src.count
        if self.count > 1 and self.src.colorinterp[-1] == ColorInterp.alpha:
            self.count -= 1  # an alpha band is a mask (read_image_window applies it), not data
        self.dtype = np.dtype(self.src.dtypes[0]).name
        self.crs = self.src.crs
        self.transform = self.src.transform

    def read(self, bands: Sequence[int], window: Window) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        r, c, h, w = window
        try:
            return read_image_window(self.src, list(bands), RioWindow(c, r, w, h))
        except RasterioError as err:
            why = remote_problem(err) if isinstance(self.path, RemoteRaster) else cause_text(err)
            raise DataError(self.path, f"unreadable window {window} ({why})") from None

    def dn_offsets(self, bands: Sequence[int]) -> tuple[int, ...]:
        return band_offsets(self.src, bands, None)

    def close(self) -> None:
        self.src.close()
        self._env.close()


class PictureScene(Scene):
    """A PNG or JPEG, decoded once; an alpha channel becomes the validity mask."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            arr = png16_array(path)  # 16-bit colour PNGs, which Pillow cuts to 8 bits
            if arr is None:
                with Image.open(path) as im:
                    im.load()
                    arr = np.asarray(_plain_mode(im))
        except (*PIL_READ_ERRORS, Image.DecompressionBombError) as err:
            raise DataError(path, f"unreadable image ({cause_text(err)})") from None
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        chw = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        self.valid = np.ones(chw.shape[1:], dtype=bool)
        if chw.shape[0] in (2, 4):  # LA or RGBA: the last band is alpha
            self.valid = chw[-1] > 0
            chw = chw[:-1]
        if np.issubdtype(chw.dtype, np.floating):
            self.valid &= np.isfinite(chw).all(axis=0)
        self.pixels = chw
        self.count, self.height, self.width = chw.shape
        self.dtype = chw.dtype.name

    def read(self, bands: Sequence[int], window: Window) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        r, c, h, w = window
        data = self.pixels[[b - 1 for b in bands], r : r + h, c : c + w]
        return data, self.valid[r : r + h, c : c + w].copy()


def _plain_mode(im: Image.Image) -> Image.Image:
    """The image in a mode numpy reads as bands: palettes and odd modes become RGB(A)/L."""
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("PA", "CMYK", "YCbCr", "RGBX", "1", "LAB", "HSV"):
        target = {"PA": "RGBA", "1": "L"}.get(im.mode, "RGB")
        return im.convert(target)
    return im


def open_scene(path: str | Path | RemoteRaster) -> Scene:
    """Open an input image: PNG/JPEG through Pillow, anything else through rasterio.

    A URL (``https://``, ``s3://``, ``gs://``, ``az://``, ``/vsi…``) is read by windows through
    GDAL, whatever its format.

    Raises:
        DataError: The file is missing or cannot be decoded (the message names it).
    """
    path = as_raster_source(path)
    if isinstance(path, RemoteRaster):
        return RasterScene(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.suffix.lower() in PICTURE_SUFFIXES:
        return PictureScene(path)
    return RasterScene(path)


def block_cache_bytes(scene: Scene, tile: int) -> int:
    """A GDAL block cache for one row band of windows: what it reads and writes, 64 MiB–1 GiB.

    GDAL's default cache is 5 % of the machine's memory; this bounds it by the blocks that a
    band of ``tile``-high windows touches (each block decoded once), plus the output blocks.
    """
    src = getattr(scene, "src", None)
    if src is None:
        return 64 << 20
    bh, bw = src.block_shapes[0]
    itemsize = np.dtype(scene.dtype).itemsize * src.count
    reading = (math.ceil(tile / bh) + 1) * math.ceil(scene.width / bw) * bh * bw * itemsize
    writing = 2 * math.ceil(scene.width / OUTPUT_BLOCK) * OUTPUT_BLOCK * OUTPUT_BLOCK
    return min(max(reading + writing, 64 << 20), 1 << 30)


class CroppedScene(Scene):
    """A window of another scene, georeferenced as its own raster (``lale predict --bbox``)."""

    def __init__(self, scene: Scene, window: Window) -> None:
        r, c, h, w = window
        self.scene, self.row, self.col = scene, r, c
        self.path, self.height, self.width = scene.path, h, w
        self.count, self.dtype, self.crs, self.tags = (
            scene.count,
            scene.dtype,
            scene.crs,
            scene.tags,
        )
        self.transform = scene.transform @ Affine.translation(c, r)
        if isinstance(scene, RasterScene):
            self.src = scene.src  # block shapes for the GDAL cache size
        self.window = window

    def read(self, bands: Sequence[int], window: Window) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        r, c, h, w = window
        return self.scene.read(bands, (r + self.row, c + self.col, h, w))

    def dn_offsets(self, bands: Sequence[int]) -> tuple[int, ...]:
        return self.scene.dn_offsets(bands)

    def close(self) -> None:
        self.scene.close()


def bbox_window(scene: Scene, bbox: Sequence[float], crs: str = "EPSG:4326") -> Window:
    """The pixel window ``(row, col, h, w)`` of ``scene`` that covers ``bbox`` (W, S, E, N).

    ``bbox`` is in ``crs`` (longitude/latitude by default) and is reprojected to the scene's CRS
    (densified edges); the window is rounded outwards and clipped to the scene.

    Raises:
        DataError: The scene has no CRS, or the box does not overlap it.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    if scene.crs is None:
        raise DataError(scene.path, "has no CRS; --bbox needs a georeferenced raster")
    west, south, east, north = bbox
    try:
        bounds = transform_bounds(CRS.from_user_input(crs), scene.crs, west, south, east, north)
    except Exception as err:  # CRS and PROJ errors
        problem = f"--bbox cannot be placed in its CRS ({cause_text(err)})"
        raise DataError(scene.path, problem) from None
    win = from_bounds(*bounds, transform=scene.transform)
    r0, c0 = max(math.floor(win.row_off), 0), max(math.floor(win.col_off), 0)
    r1 = min(math.ceil(win.row_off + win.height), scene.height)
    c1 = min(math.ceil(win.col_off + win.width), scene.width)
    if not all(math.isfinite(v) for v in bounds) or r1 <= r0 or c1 <= c0:
        raise DataError(
            scene.path, f"--bbox {west:g},{south:g},{east:g},{north:g} ({crs}) lies outside it"
        )
    return (r0, c0, r1 - r0, c1 - c0)
