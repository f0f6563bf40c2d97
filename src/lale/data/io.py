"""Reading images and masks: PNG/JPEG through Pillow, GeoTIFF through rasterio (by windows).

Images come back as ``C×H×W`` arrays in their own sample type with the schema's band selection
applied; masks as ``H×W`` uint8 labels plus the count of pixels not in the schema. Every failure
is a :class:`~lale.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from lale.data.encoded import EncodedFile, FileSource
from lale.data.encoded import source_path as _where
from lale.data.lut import unknown_counts, unknown_examples
from lale.data.schema import ClassSchema, ImageSpec
from lale.errors import DataError, cause_text

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "PIL_READ_ERRORS",
    "DataError",
    "ImageHeader",
    "MaskData",
    "Window",
    "check_image_info",
    "is_geotiff",
    "png16_array",
    "read_image",
    "read_image_alpha",
    "read_info",
    "read_mask",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
"""File types read as images (case-insensitive)."""
MASK_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
"""File types read as masks (lossy JPEG would corrupt the colours)."""
_TIFF = frozenset({".tif", ".tiff"})

Window = tuple[int, int, int, int]
"""``(row, col, height, width)`` of a rectangle inside a raster."""

# Pillow mode -> (bands, numpy sample type) as np.asarray(image) returns them.
_PIL_MODES: dict[str, tuple[int, str]] = {
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


@dataclass(frozen=True)
class MaskData:
    """A decoded mask.

    Attributes:
        labels: ``H×W`` uint8 class indices; ignore pixels hold the schema's ``ignore_index``.
        unknown: Pixels whose colour or value is not in the schema (declared no-label excluded).
        examples: Up to three of those unknown colours or values, as text.
        top: The most frequent unknown colours or values with their pixel counts.
    """

    labels: NDArray[np.uint8]
    unknown: int
    examples: tuple[str, ...] = ()
    top: tuple[tuple[str, int], ...] = ()


def is_geotiff(path: str | FileSource) -> bool:
    """Whether ``path`` is read through rasterio (``.tif``/``.tiff``)."""
    return _source(path).suffix.lower() in _TIFF


def _source(path: str | FileSource) -> FileSource:
    return path if isinstance(path, EncodedFile) else Path(path)


def _opened(src: FileSource) -> Path | io.BytesIO:
    """What Pillow and rasterio open: the file, or a stream of its bytes."""
    if isinstance(src, EncodedFile):
        try:
            return io.BytesIO(src.read_bytes())
        except (OSError, KeyError, IndexError, ValueError) as err:
            raise DataError(src.path, f"unreadable from its shard ({cause_text(err)})") from err
    return src


def _rasterio() -> ModuleType:
    try:
        import rasterio
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("reading GeoTIFFs needs rasterio: pip install rasterio") from err
    return rasterio


@contextmanager
def _reading(path: FileSource, what: str) -> Iterator[None]:
    """Turn any failure to decode ``path`` into a one-line :class:`DataError`."""
    errors: tuple[type[BaseException], ...] = (*PIL_READ_ERRORS, Image.DecompressionBombError)
    if is_geotiff(path):
        errors += (_rasterio().errors.RasterioError,)
    try:
        yield
    except DataError:
        raise
    except errors as err:
        raise DataError(_where(path), f"unreadable {what} ({cause_text(err)})") from err


@contextmanager
def _open_tiff(path: FileSource, what: str) -> Iterator[Any]:
    """``rasterio.open(path)`` with errors as :class:`DataError`, quiet about missing CRS."""
    rasterio = _rasterio()
    with _reading(path, what), warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(_opened(path)) as src:
            yield src


def _tiff_info(src: Any) -> ImageHeader:
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
    path = _source(path)
    if _png16_type(path) is None:
        return None
    with _open_tiff(path, what) as src:
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
    path = _source(path)
    if is_geotiff(path):
        with _open_tiff(path, what) as src:
            return _tiff_info(src)
    if (colour := _png16_type(path)) is not None:
        with _open_tiff(path, what) as src:
            return ImageHeader(
                src.height, src.width, src.count, "uint16", alpha=colour in _PNG_ALPHA
            )
    with _reading(path, what), Image.open(_opened(path)) as im:
        if im.mode not in _PIL_MODES:
            raise DataError(_where(path), f"unsupported {what} mode {im.mode!r}")
        count, dtype = _PIL_MODES[im.mode]
        alpha = im.mode in ("LA", "PA", "RGBA")
        return ImageHeader(im.height, im.width, count, dtype, im.mode == "P", alpha)
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


def check_image_info(path: str | FileSource, info: ImageHeader, spec: ImageSpec) -> None:
    """Raise :class:`DataError` if an image's header does not match ``spec``.

    A palette image counts as three-band RGB; an alpha band is not counted when the schema
    expects one band fewer (it is dropped, see :func:`read_image_alpha`).
    """
    path = _where(_source(path))
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


def _pil_array(path: FileSource, what: str, palette_to_rgb: bool) -> tuple[NDArray[Any], Any]:
    """Decode a PNG/JPEG fully; returns the array (``H×W`` or ``H×W×C``) and its palette."""
    if (deep := png16_array(path, what)) is not None:
        return deep, None
    with _reading(path, what), Image.open(_opened(path)) as im:
        im.load()
        if im.mode not in _PIL_MODES:
            raise DataError(_where(path), f"unsupported {what} mode {im.mode!r}")
        if im.mode == "P" and not palette_to_rgb:
            pal = np.asarray(im.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
            return np.asarray(im), pal
        if im.mode in ("P", "PA"):
            im = im.convert("RGB" if im.mode == "P" else "RGBA")
        arr = np.asarray(im)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr, None


def _check_window(window: Window, height: int, width: int) -> None:
    r, c, h, w = window
    if r < 0 or c < 0 or h < 1 or w < 1 or r + h > height or c + w > width:
        raise ValueError(f"window {window} outside a {height}×{width} raster")


def _tiff_read(
    path: FileSource,
    what: str,
    bands: list[int] | None,
    window: Window | None,
    check: Callable[[ImageHeader], None] | None = None,
) -> NDArray[Any]:
    """Read (a window of) a GeoTIFF as ``C×H×W``, after ``check(header)``."""
    with _open_tiff(path, what) as src:
        info = _tiff_info(src)
        if check is not None:
            check(info)
        if bands is not None and max(bands) > info.count:
            raise DataError(
                _where(path), f"{what} has {info.count} bands; band {max(bands)} requested"
            )
        win = None
        if window is not None:
            _check_window(window, info.height, info.width)
            r, c, h, w = window
            win = _rasterio().windows.Window(c, r, w, h)
        return np.asarray(src.read(indexes=bands, window=win))
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


def read_image(
    path: str | FileSource, spec: ImageSpec | None = None, window: Window | None = None
) -> NDArray[Any]:
    """An image as a ``C×H×W`` array in its own sample type, bands selected as ``spec`` says.

    An alpha band (``LA``/``RGBA`` PNG) is dropped; :func:`read_image_alpha` also returns it.

    Args:
        path: PNG, JPEG or GeoTIFF file. Palette PNGs are read as RGB; 16-bit PNGs as uint16.
        spec: Band count, sample type and band selection to check and apply (default: 8-bit RGB).
        window: Only this ``(row, col, height, width)`` rectangle (read by window from GeoTIFFs).

    Raises:
        DataError: The file cannot be decoded (truncated, not an image), or its band count or
            sample type differs from ``spec``.
    """
    return read_image_alpha(path, spec, window)[0]


def read_image_alpha(
    path: str | FileSource, spec: ImageSpec | None = None, window: Window | None = None
) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
    """:func:`read_image` and, for a PNG with an alpha band, where it is opaque (alpha > 0).

    Returns:
        ``(image, opaque)``; ``opaque`` is ``None`` when the file has no alpha band.
    """
    path, spec = _source(path), spec or ImageSpec()
    bands = None if spec.bands is None else list(spec.bands)
    if is_geotiff(path):
        check = lambda i: check_image_info(path, i, spec)  # noqa: E731
        return _tiff_read(path, "image", bands, window, check), None
    arr, _ = _pil_array(path, "image", palette_to_rgb=True)
    chw = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    count, height, width = chw.shape
    alpha = count in (2, 4) and count - 1 == spec.band_count
    check_image_info(path, ImageHeader(height, width, count, chw.dtype.name, alpha=alpha), spec)
    opaque = None
    if alpha:
        opaque, chw = chw[-1] > 0, chw[:-1]
    if bands is not None:
        chw = chw[[b - 1 for b in bands]]
    if window is not None:
        _check_window(window, height, width)
        r, c, h, w = window
        chw = chw[:, r : r + h, c : c + w]
        opaque = None if opaque is None else opaque[r : r + h, c : c + w]
    return np.ascontiguousarray(chw), opaque


def read_mask(
    path: str | FileSource, schema: ClassSchema, window: Window | None = None
) -> MaskData:
    """Decode a mask into class labels, counting pixels of unknown colours or values.

    Colour masks (RGB, or RGBA with alpha ignored) are decoded by colour; palette PNGs by their
    palette colours when the schema has mask colours (by index where that leaves fewer pixels
    unknown: a palette that only draws the values), else by index; single-band masks (PNG or
    GeoTIFF, any integer or float type) by value. With ``window`` only that rectangle is decoded
    and counted.

    Raises:
        DataError: The file cannot be decoded, has a band count that is neither 1, 3 nor 4, or
            is a colour mask for a schema without mask colours.
    """
    path = _source(path)
    palette = None
    if is_geotiff(path):
        chw = _tiff_read(path, "mask", None, window)
        arr = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
    else:
        arr, palette = _pil_array(path, "mask", palette_to_rgb=False)
        if window is not None:
            _check_window(window, arr.shape[0], arr.shape[1])
            r, c, h, w = window
            arr = arr[r : r + h, c : c + w]
    ignore = schema.ignore_index
    declared: tuple[Any, ...]
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise DataError(
                _where(path), f"mask has {arr.shape[2]} {arr.dtype} bands; expected 1 or 3"
            )
        if not schema.has_colors:
            raise DataError(
                _where(path), f"colour mask, but schema {schema.name!r} has no mask colours"
            )
        labels, unknown = schema.decode_colors(arr)
        raw, declared = arr, schema.ignore_colors
    elif palette is not None and schema.has_colors:
        labels, unknown = schema.decode_palette(arr, palette)
        pal = np.zeros((256, 3), np.uint8)
        pal[: min(len(palette), 256)] = palette[:256]
        raw, declared = pal[arr], schema.ignore_colors
        # A palette that only draws the indices (white and black for values 1 and 2, say) while
        # the schema gives values too: the indices are the labels.
        if unknown and (by_value := schema.decode_values(arr))[1] < unknown:
            (labels, unknown), raw, declared = by_value, arr, schema.ignore_values
    else:
        labels, unknown = schema.decode_values(arr)
        raw, declared = arr, schema.ignore_values
    examples = unknown_examples(raw, labels, ignore, declared) if unknown else []
    top = unknown_counts(raw, labels, ignore, declared) if unknown else []
    return MaskData(np.ascontiguousarray(labels), unknown, tuple(examples), tuple(top))
