"""Whether an image file holds every byte its header promises, checked before anything is written.

A header decodes fine from a file cut short by a failed copy, so :func:`check_complete` looks
past it, cheaply and without decoding pixels: a PNG's chunks are walked by their lengths to
``IEND``, a JPEG must end in its end-of-image marker, and every block (strip or tile) a TIFF's
directory lists must lie inside the file. ``lale train`` runs it on every pair during its data
checks, so a truncated image is one line naming the file before the run directory exists.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

from lale.data.io.encoded import EncodedFile, FileSource
from lale.data.io.encoded import source_path as _where
from lale.errors import DataError, cause_text

__all__ = ["check_complete"]

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_JPEG_TAIL = 1024
"""Bytes at the end of a JPEG searched for its end-of-image marker (writers may pad after it)."""
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def check_complete(path: FileSource, what: str = "image") -> None:
    """Raise :class:`DataError` if ``path`` ends before the data its header describes.

    Formats other than PNG, JPEG and TIFF pass unchecked (their readers report truncation).

    Raises:
        DataError: The file is truncated or cannot be read.
    """
    try:
        with _open(path) as f:
            size = f.seek(0, io.SEEK_END)
            f.seek(0)
            head = f.read(8)
            if head == _PNG:
                problem = _png_problem(f, size)
            elif head.startswith(_JPEG):
                problem = _jpeg_problem(f, size)
            elif head[:4] in _TIFF:
                problem = _tiff_problem(path, size)
            else:
                problem = None
    except OSError as err:
        raise DataError(_where(path), f"unreadable {what} ({cause_text(err)})") from err
    if problem is not None:
        raise DataError(_where(path), f"truncated {what}: {problem} (an incomplete copy?)")


def _open(path: FileSource) -> BinaryIO:
    if isinstance(path, EncodedFile):
        return io.BytesIO(path.read_bytes())
    return Path(path).open("rb")


def _png_problem(f: BinaryIO, size: int) -> str | None:
    """Walk the chunks by their length fields; the file must reach ``IEND`` within its size."""
    pos = 8
    while pos + 8 <= size:
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        pos += 12 + length  # length, type, data, CRC
        if pos > size:
            return f"its {kind.decode('latin-1')!r} chunk runs past the end ({size} bytes)"
        if kind == b"IEND":
            return None
    return f"the file ends ({size} bytes) before the PNG's IEND chunk"


def _jpeg_problem(f: BinaryIO, size: int) -> str | None:
    f.seek(max(0, size - _JPEG_TAIL))
    if _JPEG_END in f.read():
        return None
    return f"no end-of-image marker in the last {_JPEG_TAIL} bytes ({size} bytes)"


def _tiff_problem(path: FileSource, size: int) -> str | None:
    """Every block the TIFF directory lists (band 1, or every band when band-interleaved)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    source = io.BytesIO(path.read_bytes()) if isinstance(path, EncodedFile) else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(source) as src:
                separate = src.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE") == "BAND"
                for band in src.indexes if separate else (1,):
                    for (row, col), _ in src.block_windows(band):
                        offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
                        length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
                        if offset is None or length is None:
                            return None  # not a layout GDAL describes; its reader will tell
                        end = int(offset) + int(length)
                        if int(length) and end > size:
                            return (
                                f"band {band} block ({row}, {col}) ends at byte {end}, "
                                f"past the end of the file ({size} bytes)"
                            )
    except RasterioError:
        return None  # an unreadable header is the header check's to report
    return None
