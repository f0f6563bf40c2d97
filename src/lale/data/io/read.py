"""Reading pixels: images as ``C×H×W`` arrays, masks as class labels with their unknown pixels.

Images come back in their own sample type with the schema's band selection applied (an alpha
band dropped, or returned as an opacity mask); masks as ``H×W`` uint8 labels plus the count of
pixels not in the schema. GeoTIFFs are read by windows. Every failure is a
:class:`~lale.errors.DataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from lale.data.io.encoded import FileSource
from lale.data.io.encoded import source_path as _where
from lale.data.io.files import (
    PIL_MODES,
    ImageHeader,
    Window,
    as_source,
    check_image_info,
    is_geotiff,
    open_tiff,
    opened,
    png16_array,
    rasterio_module,
    reading,
    tiff_header,
)
from lale.data.schema import ClassSchema, ImageSpec
from lale.data.schema.lut import unknown_counts, unknown_examples
from lale.errors import DataError

__all__ = ["MaskData", "read_image", "read_image_alpha", "read_mask"]


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


def _pil_array(path: FileSource, what: str, palette_to_rgb: bool) -> tuple[NDArray[Any], Any]:
    """Decode a PNG/JPEG fully; returns the array (``H×W`` or ``H×W×C``) and its palette."""
    if (deep := png16_array(path, what)) is not None:
        return deep, None
    with reading(path, what), Image.open(opened(path)) as im:
        im.load()
        if im.mode not in PIL_MODES:
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
    with open_tiff(path, what) as src:
        info = tiff_header(src)
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
            win = rasterio_module().windows.Window(c, r, w, h)
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
    path, spec = as_source(path), spec or ImageSpec()
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
    path = as_source(path)
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
