"""A small, fast PNG encoder for 8-bit RGB arrays (the images and masks lale writes).

Pillow's encoder tries five row filters per row and picks the best, which costs ~3 ms for a noisy
256² RGB patch — two thirds of its encoding time. Here every row uses the PNG "Up" filter
(a vectorised difference with the row above) and zlib compresses at level 1 with a strategy suited
to the content (Huffman-only for imagery, run-length for flat colour masks). The files are
standard PNGs (any decoder reads them) within ~3 % of Pillow's size, at about a third of the
time. Output is deterministic for a given zlib.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type "Up"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgb: NDArray[np.uint8], strategy: int = zlib.Z_HUFFMAN_ONLY) -> bytes:
    """PNG file bytes of an ``H×W×3`` uint8 array.

    Args:
        rgb: The image; must be ``uint8`` with three channels.
        strategy: zlib strategy, e.g. ``zlib.Z_HUFFMAN_ONLY`` (imagery) or ``zlib.Z_RLE``
            (masks with large flat areas).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 array, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    rows = np.ascontiguousarray(rgb).reshape(h, 3 * w)
    raw = np.empty((h, 3 * w + 1), np.uint8)
    raw[:, 0] = _UP
    raw[0, 1:] = rows[0]  # the row above the first one counts as zeros
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # modulo 256, as the filter defines
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 9, strategy)
    idat = comp.compress(raw.data) + comp.flush()
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit, truecolour, no interlace
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def write_png(
    path: str | Path, rgb: NDArray[np.uint8], strategy: int = zlib.Z_HUFFMAN_ONLY
) -> None:
    """Write ``rgb`` (``H×W×3`` uint8) to ``path`` as PNG; see :func:`encode_png`."""
    Path(path).write_bytes(encode_png(rgb, strategy))
