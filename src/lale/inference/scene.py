"""Scene input and output by windows: what the predictor reads and writes.

:func:`open_scene` reads a GeoTIFF window by window (rasterio) or decodes a PNG/JPEG once
(Pillow); :meth:`Scene.read` returns a window's bands and where they hold data.
:class:`SceneOutputs` writes the class map, confidence map and preview under temporary names and
renames them in :meth:`SceneOutputs.commit`. Formats: docs/design.md#outputs.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow

from lale.data.rasters import band_offsets, open_raster, read_image_window
from lale.data.schema import ClassSchema
from lale.errors import DataError
from lale.inference.tiling import Window

__all__ = [
    "CLASS_NODATA",
    "CONFIDENCE_NODATA",
    "PICTURE_SUFFIXES",
    "PictureScene",
    "RasterScene",
    "Scene",
    "SceneOutputs",
    "block_cache_bytes",
    "open_scene",
]

CLASS_NODATA = 255
"""Class-map value of no-data pixels."""
CONFIDENCE_NODATA = 0
"""Confidence-map value of no-data pixels."""
PICTURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""Inputs read through Pillow (case-insensitive); everything else goes through rasterio."""
_BLOCK = 256
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error)


class Scene(ABC):
    """An input image, read by windows.

    Attributes:
        path: The file.
        height: Rows.
        width: Columns.
        count: Image bands (an alpha band or channel is a mask, not counted).
        dtype: numpy name of the sample type.
        crs: Coordinate reference system, ``None`` if the file has none.
        transform: Pixel → CRS affine transform (identity without georeference).
    """

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    crs: CRS | None = None
    transform: Affine = Affine.identity()

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
    """A raster opened through rasterio (GeoTIFF of any size, band count and sample type)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.src = open_raster(path)
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
            raise DataError(self.path, f"unreadable window {window} ({err})") from None

    def dn_offsets(self, bands: Sequence[int]) -> tuple[int, ...]:
        return band_offsets(self.src, bands, None)

    def close(self) -> None:
        self.src.close()


class PictureScene(Scene):
    """A PNG or JPEG, decoded once; an alpha channel becomes the validity mask."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(_plain_mode(im))
        except (*_PIL_ERRORS, Image.DecompressionBombError) as err:
            raise DataError(path, f"unreadable image ({type(err).__name__}: {err})") from None
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


def open_scene(path: str | Path) -> Scene:
    """Open an input image: PNG/JPEG through Pillow, anything else through rasterio.

    Raises:
        DataError: The file is missing or cannot be decoded (the message names it).
    """
    path = Path(path)
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
    if not isinstance(scene, RasterScene):
        return 64 << 20
    bh, bw = scene.src.block_shapes[0]
    itemsize = np.dtype(scene.dtype).itemsize * scene.src.count
    reading = (math.ceil(tile / bh) + 1) * math.ceil(scene.width / bw) * bh * bw * itemsize
    writing = 2 * math.ceil(scene.width / _BLOCK) * _BLOCK * _BLOCK
    return min(max(reading + writing, 64 << 20), 1 << 30)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _palette(schema: ClassSchema) -> NDArray[np.uint8]:
    """256 × 3 palette: the display colours, black elsewhere (no-data shown transparent)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: schema.num_classes] = np.asarray(schema.display_colors, dtype=np.uint8)
    return pal


class _TiffRows:
    """A single-band uint8 GeoTIFF written in whole 256-row block bands."""

    def __init__(
        self,
        path: Path,
        scene: Scene,
        nodata: int,
        colors: NDArray[np.uint8] | None,
        tags: dict[str, str],
    ) -> None:
        self.path, self.tmp = path, _temporary(path)
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "height": scene.height,
            "width": scene.width,
            "count": 1,
            "dtype": "uint8",
            "crs": scene.crs,
            "transform": scene.transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": _BLOCK,
            "blockysize": _BLOCK,
            "compress": "deflate",
            "bigtiff": "if_safer",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.dst = rasterio.open(self.tmp, "w", **profile)
        try:
            if colors is not None:
                cmap = {i: (*map(int, colors[i]), 255) for i in range(256)}
                cmap[nodata] = (0, 0, 0, 0)
                self.dst.write_colormap(1, cmap)
            self.dst.update_tags(**tags)
        except BaseException:
            self.abort()
            raise
        self.pending: list[NDArray[np.uint8]] = []
        self.start = 0  # first scene row not yet written

    def write(self, row: int, rows: NDArray[np.uint8]) -> None:
        if row != self.start + sum(len(p) for p in self.pending):
            raise ValueError(f"rows must arrive in order; got row {row}")
        self.pending.append(rows)
        buffered = sum(len(p) for p in self.pending)
        if row + len(rows) == self.dst.height:
            self._flush(buffered)
        elif buffered >= _BLOCK:
            self._flush(buffered // _BLOCK * _BLOCK)

    def _flush(self, n: int) -> None:
        block = np.concatenate(self.pending)
        self.dst.write(block[:n], 1, window=RioWindow(0, self.start, block.shape[1], n))
        self.pending = [block[n:]] if n < len(block) else []
        self.start += n

    def commit(self) -> Path:
        self.dst.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.dst.close()
        self.tmp.unlink(missing_ok=True)


class _PngRows:
    """A PNG collected in memory (every ``step``-th row and column), written on commit."""

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        palette: NDArray[np.uint8] | None,
        fill: int,
        max_side: int | None = None,
    ) -> None:
        self.path, self.tmp, self.palette = path, _temporary(path), palette
        self.step = 1 if max_side is None else max(1, math.ceil(max(height, width) / max_side))
        shape = (math.ceil(height / self.step), math.ceil(width / self.step))
        self.image = np.full(shape, fill, dtype=np.uint8)

    def write(self, row: int, rows: NDArray[np.uint8]) -> None:
        first = -row % self.step  # first row of the block on the subsampling grid
        kept = rows[first :: self.step, :: self.step]
        r0 = (row + first) // self.step
        self.image[r0 : r0 + len(kept)] = kept

    def commit(self) -> Path:
        im = Image.fromarray(self.image)  # 2-D uint8: mode "L"
        if self.palette is not None:
            im = im.convert("P")
            im.putpalette(self.palette.ravel().tolist())
            im.save(self.tmp, format="PNG", transparency=CLASS_NODATA, optimize=False)
        else:
            im.save(self.tmp, format="PNG")
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class SceneOutputs:
    """The files one scene's prediction produces; rows arrive top to bottom.

    Args:
        scene: The input (size, CRS, transform; raster or picture output formats).
        out_dir: Output folder (created if needed).
        name: Base name of the files (``NAME_classes.tif`` …).
        schema: Class names and display colours.
        confidence: Also write the confidence map.
        preview_size: Longest side of the raster preview PNG.
    """

    def __init__(
        self,
        scene: Scene,
        out_dir: Path,
        name: str,
        schema: ClassSchema,
        confidence: bool = False,
        preview_size: int = 2048,
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        pal = _palette(schema)
        h, w = scene.height, scene.width
        self.files: dict[str, _TiffRows | _PngRows] = {}
        self.confidence = confidence
        try:
            if isinstance(scene, PictureScene):
                self.files["classes"] = _PngRows(
                    out_dir / f"{name}_classes.png", h, w, pal, CLASS_NODATA
                )
                if confidence:
                    self.files["confidence"] = _PngRows(
                        out_dir / f"{name}_confidence.png", h, w, None, CONFIDENCE_NODATA
                    )
                return
            tags = {"classes": json.dumps(list(schema.names)), "schema": schema.name}
            self.files["classes"] = _TiffRows(
                out_dir / f"{name}_classes.tif", scene, CLASS_NODATA, pal, tags
            )
            self.files["preview"] = _PngRows(
                out_dir / f"{name}_preview.png", h, w, pal, CLASS_NODATA, preview_size
            )
            if confidence:
                tags = {"confidence": "round(255 * max softmax probability)"}
                self.files["confidence"] = _TiffRows(
                    out_dir / f"{name}_confidence.tif", scene, CONFIDENCE_NODATA, None, tags
                )
        except BaseException:
            self.abort()
            raise

    def write(
        self, row: int, classes: NDArray[np.uint8], confidence: NDArray[np.uint8] | None = None
    ) -> None:
        """Write finished rows starting at scene ``row``."""
        for kind, sink in self.files.items():
            if kind == "confidence":
                if confidence is None:
                    raise ValueError("confidence rows are needed for the confidence map")
                sink.write(row, confidence)
            else:
                sink.write(row, classes)

    def commit(self) -> dict[str, Path]:
        """Move every file into place; returns them by kind."""
        return {kind: sink.commit() for kind, sink in self.files.items()}

    def abort(self) -> None:
        """Remove every temporary file."""
        for sink in self.files.values():
            sink.abort()
