"""Image and mask files: their types, opening them, and what their headers say.

PNG/JPEG open through Pillow, GeoTIFF (and 16-bit colour PNG) through rasterio; a file held in
a shard is opened from its bytes. :func:`read_info` reads a header without decoding the pixels
and :func:`check_image_info` checks it against the schema's image format. Every failure is a
:class:`~lale.errors.DataError` naming the file; :mod:`lale.data.io.read` reads the pixels.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from lale.data.io.encoded import EncodedFile, FileSource
from lale.data.io.encoded import source_path as _where
from lale.data.schema import ImageSpec
from lale.errors import DataError, cause_text

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "PIL_MODES",
    "PIL_READ_ERRORS",
    "ImageHeader",
    "Window",
    "as_source",
    "check_image_info",
    "is_geotiff",
    "open_tiff",
    "opened",
    "png16_array",
    "rasterio_module",
    "read_info",
    "reading",
    "tiff_header",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
"""File types read as images (case-insensitive)."""
MASK_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
"""File types read as masks (lossy JPEG would corrupt the colours)."""
_TIFF = frozenset({".tif", ".tiff"})

Window = tuple[int, int, int, int]
"""``(row, col, height, width)`` of a rectangle inside a raster."""

# Pillow mode -> (bands, numpy sample type) as np.asarray(image) returns them.
PIL_MODES: dict[str, tuple[int, str]] = {
    "1": (1, "bool"),
    "L": (1, "uint8"),
    "P": (1, "uint8"),
    "LA": (2, "uint8"),
    "PA": (2, "uint8"),
    "RGB": (3, "uint8"),
    "YCbCr": (3, "uint8"),
    "RGBA": (4, "uint8"),
    "RGBX": (4, "uint8"),
    "CMYK": (4, "uint8"),
    "I": (1, "int32"),
    "F": (1, "float32"),
    **{m: (1, "uint16") for m in ("I;16", "I;16L", "I;16B", "I;16N")},
}
PIL_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error)
"""What Pillow raises on a broken or truncated file (besides ``DecompressionBombError``)."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says.

    Attributes:
        height: Rows.
        width: Columns.
        count: Bands in the file (a palette image has one).
        dtype: numpy name of the sample type.
        palette: Whether the single band indexes a colour palette (palette PNG).
        alpha: Whether the last band is an alpha channel (``LA``/``RGBA`` PNG).
    """

    height: int
    width: int
    count: int
    dtype: str
    palette: bool = False
    alpha: bool = False


def is_geotiff(path: str | FileSource) -> bool:
    """Whether ``path`` is read through rasterio (``.tif``/``.tiff``)."""
    return as_source(path).suffix.lower() in _TIFF


def as_source(path: str | FileSource) -> FileSource:
    """``path`` as a file source: an :class:`EncodedFile` as it is, anything else as a path."""
    return path if isinstance(path, EncodedFile) else Path(path)


def opened(src: FileSource) -> Path | io.BytesIO:
    """What Pillow and rasterio open: the file, or a stream of its bytes."""
    if isinstance(src, EncodedFile):
        try:
            return io.BytesIO(src.read_bytes())
        except (OSError, KeyError, IndexError, ValueError) as err:
            raise DataError(src.path, f"unreadable from its shard ({cause_text(err)})") from err
    return src


def rasterio_module() -> ModuleType:
    """rasterio, imported on first use (reading a GeoTIFF needs it, nothing else does)."""
    try:
        import rasterio
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("reading GeoTIFFs needs rasterio: pip install rasterio") from err
    return rasterio


@contextmanager
def reading(path: FileSource, what: str) -> Iterator[None]:
    """Turn any failure to decode ``path`` into a one-line :class:`DataError`."""
    errors: tuple[type[BaseException], ...] = (*PIL_READ_ERRORS, Image.DecompressionBombError)
    if is_geotiff(path):
        errors += (rasterio_module().errors.RasterioError,)
    try:
        yield
    except DataError:
        raise
    except errors as err:
        raise DataError(_where(path), f"unreadable {what} ({cause_text(err)})") from err


@contextmanager
def open_tiff(path: FileSource, what: str) -> Iterator[Any]:
    """``rasterio.open(path)`` with errors as :class:`DataError`, quiet about missing CRS."""
    rasterio = rasterio_module()
    with reading(path, what), warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(opened(path)) as src:
            yield src


def tiff_header(src: Any) -> ImageHeader:
    """The header of an open rasterio dataset."""
    return ImageHeader(src.height, src.width, src.count, np.dtype(src.dtypes[0]).name)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_ALPHA = frozenset({4, 6})  # grey + alpha, RGB + alpha


def _png16_type(path: FileSource) -> int | None:
    """The PNG colour type of a 16-bit grey+alpha, RGB or RGBA PNG; ``None`` for anything else.

    Pillow reads those as 8 bits (it keeps the high byte), so they are read through GDAL.
    """
    if path.suffix.lower() != ".png":
        return None
    try:
        if isinstance(path, EncodedFile):
            head = path.read_bytes()[:26]
        else:
            with open(path, "rb") as fh:
                head = fh.read(26)
    except (OSError, KeyError, IndexError, ValueError):
        return None  # reported by the reader that follows
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    depth, colour = head[24], head[25]
    return colour if depth == 16 and colour in (2, 4, 6) else None


def png16_array(path: str | FileSource, what: str = "image") -> NDArray[np.uint16] | None:
    """A 16-bit colour PNG as an ``H×W×C`` uint16 array (alpha last); ``None`` if it is not one.

    Raises:
        DataError: The file cannot be decoded.
    """
    path = as_source(path)
    if _png16_type(path) is None:
        return None
    with open_tiff(path, what) as src:
        return np.asarray(src.read(), dtype=np.uint16).transpose(1, 2, 0)
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


def read_info(path: str | FileSource, what: str = "image") -> ImageHeader:
    """Size, band count and sample type from a file's header (the pixels are not decoded).

    Args:
        path: The file.
        what: What it is, for messages (``"image"``, ``"mask"``).

    Raises:
        DataError: The file is missing or not a readable image.
    """
    path = as_source(path)
    if is_geotiff(path):
        with open_tiff(path, what) as src:
            return tiff_header(src)
    if (colour := _png16_type(path)) is not None:
        with open_tiff(path, what) as src:
            return ImageHeader(
                src.height, src.width, src.count, "uint16", alpha=colour in _PNG_ALPHA
            )
    with reading(path, what), Image.open(opened(path)) as im:
        if im.mode not in PIL_MODES:
            raise DataError(_where(path), f"unsupported {what} mode {im.mode!r}")
        count, dtype = PIL_MODES[im.mode]
        alpha = im.mode in ("LA", "PA", "RGBA")
        return ImageHeader(im.height, im.width, count, dtype, im.mode == "P", alpha)
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


def check_image_info(path: str | FileSource, info: ImageHeader, spec: ImageSpec) -> None:
    """Raise :class:`DataError` if an image's header does not match ``spec``.

    A palette image counts as three-band RGB; an alpha band is not counted when the schema
    expects one band fewer (it is dropped, see :func:`read_image_alpha`).
    """
    path = _where(as_source(path))
    count = 3 if info.palette else info.count
    if info.alpha and count - 1 == spec.band_count:
        count -= 1
    if count != spec.band_count:
        raise DataError(path, f"image has {count} bands but the schema expects {spec.band_count}")
    if spec.dtype is not None and info.dtype != spec.dtype:
        raise DataError(
            path,
            f"image samples are {info.dtype} but the schema expects {spec.dtype} "
            "(set image.dtype and image.scale in the schema)",
        )
