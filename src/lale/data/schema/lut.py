"""Mask decoding through lookup tables: colours or values to class indices, unknowns counted.

Every function maps a whole mask with one table look-up (no loop over classes per pixel) and
returns the label map (``uint8``, unknown encodings → ``ignore``) with the number of pixels whose
encoding is neither a class nor a declared "no label" encoding. :class:`~lale.data.schema.
ClassSchema` wraps these with its own colours and values.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "color_keys",
    "decode_colors",
    "decode_palette",
    "decode_values",
    "unknown_counts",
    "unknown_examples",
]

RGB = tuple[int, int, int]
Decoded = tuple[NDArray[np.uint8], int]
"""``(labels, unknown_pixel_count)``."""


def _key(c: RGB) -> int:
    return (c[0] << 16) | (c[1] << 8) | c[2]


def color_keys(rgb: NDArray[Any]) -> NDArray[np.uint32]:
    """24-bit keys ``R<<16 | G<<8 | B`` of an ``…×3`` (or ×4, alpha ignored) colour array."""
    a = np.asarray(rgb)
    r, g, b = (a[..., i].astype(np.uint32) for i in range(3))
    return np.asarray((r << 16) | (g << 8) | b, dtype=np.uint32)


@functools.lru_cache(maxsize=8)
def _color_lut(colors: tuple[RGB, ...], fill: int) -> NDArray[np.uint8]:
    """Label of every 24-bit colour (16 MiB, built once per process and colour set)."""
    lut = np.full(1 << 24, fill, np.uint8)
    lut[[_key(c) for c in colors]] = np.arange(len(colors), dtype=np.uint8)
    return lut


@functools.lru_cache(maxsize=8)
def _value_lut(
    values: tuple[int, ...], ignore: tuple[int, ...], fill: int, itemsize: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Label and "unknown" flag of every uint8 (``itemsize`` 1) or uint16 (2) value."""
    size = 1 << (8 * itemsize)
    lut = np.full(size, fill, np.uint8)
    unknown = np.ones(size, np.bool_)
    for label, v in enumerate(values):
        if v < size:
            lut[v], unknown[v] = label, False
    unknown[[v for v in ignore if v < size]] = False
    return lut, unknown


def decode_colors(
    rgb: NDArray[Any], colors: tuple[RGB, ...], ignore_colors: tuple[RGB, ...], ignore: int
) -> Decoded:
    """Labels of an ``H×W×3`` (×4: alpha ignored) colour mask; class ``i`` is ``colors[i]``."""
    key = color_keys(rgb)
    labels = _color_lut(colors, ignore)[key]
    unknown = int(np.count_nonzero(labels == ignore))
    for c in ignore_colors:  # declared "no label" colours (usually none) are not unknown
        unknown -= int(np.count_nonzero(key == _key(c)))
    return labels, unknown


def decode_palette(
    index: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    colors: tuple[RGB, ...],
    ignore_colors: tuple[RGB, ...],
    ignore: int,
) -> Decoded:
    """Labels of a palette mask: ``index`` (``H×W``) points into ``palette`` (``K×3``)."""
    n = min(len(palette), 256)
    entries = np.zeros((256, 3), np.uint8)
    entries[:n] = palette[:n]
    keys = color_keys(entries)
    lut = _color_lut(colors, ignore)[keys]  # a copy: 256 entries
    unknown = (lut == ignore) & ~np.isin(keys, [_key(c) for c in ignore_colors])
    lut[n:], unknown[n:] = ignore, True  # indices past the palette's end
    idx = np.asarray(index, np.uint8)
    counts = np.bincount(idx.ravel(), minlength=256)
    return lut[idx], int(counts[unknown].sum())


def decode_values(
    mask: NDArray[Any], values: tuple[int, ...], ignore_values: tuple[int, ...], ignore: int
) -> Decoded:
    """Labels of a single-band index mask (any numeric type); class ``i`` is ``values[i]``.

    uint8/uint16 masks go through a 256/65536-entry table; other types (int32, float with NaN
    no-data, …) through a binary search over the sorted known values.
    """
    arr = np.asarray(mask)
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if arr.dtype in (np.uint8, np.uint16):
        lut, flags = _value_lut(values, ignore_values, ignore, arr.dtype.itemsize)
        counts = np.bincount(arr.ravel(), minlength=len(lut))
        return lut[arr], int(counts[flags].sum())
    keys = np.asarray((*values, *ignore_values), np.float64)
    order = np.argsort(keys)
    target = np.concatenate([np.arange(len(values)), np.full(len(ignore_values), ignore)])
    flat = arr.astype(np.float64, copy=False)
    pos = np.clip(np.searchsorted(keys[order], flat), 0, len(keys) - 1)
    found = keys[order][pos] == flat
    labels = np.where(found, target[order][pos], ignore).astype(np.uint8)
    return labels, int(np.count_nonzero(~found))


def unknown_examples(
    mask: NDArray[Any],
    labels: NDArray[np.uint8],
    ignore: int,
    declared: tuple[Any, ...],
    limit: int = 3,
) -> list[str]:
    """Up to ``limit`` distinct unknown encodings in ``mask``, as text (for messages).

    Args:
        mask: The raw mask: ``H×W×3``/``×4`` colours or ``H×W`` values.
        labels: Its decoded labels.
        ignore: The ignore label.
        declared: Declared "no label" colours or values, which are not unknown.
        limit: How many to list.
    """
    found = sorted(_unknown_encodings(mask, labels, ignore, declared))[:limit]
    return [_text(k, np.asarray(mask).ndim == 3, hexa=False) for k in found]


def unknown_counts(
    mask: NDArray[Any],
    labels: NDArray[np.uint8],
    ignore: int,
    declared: tuple[Any, ...],
    limit: int = 5,
) -> list[tuple[str, int]]:
    """The ``limit`` most frequent unknown encodings in ``mask`` with their pixel counts.

    Colours read ``"#rrggbb (r,g,b)"``, values as numbers; arguments as :func:`unknown_examples`.
    """
    found = _unknown_encodings(mask, labels, ignore, declared)
    top = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [(_text(k, np.asarray(mask).ndim == 3, hexa=True), n) for k, n in top]


def _unknown_encodings(
    mask: NDArray[Any], labels: NDArray[np.uint8], ignore: int, declared: tuple[Any, ...]
) -> dict[Any, int]:
    """Unknown colour keys (colour masks) or values with their pixel counts."""
    arr = np.asarray(mask)
    hit = labels == ignore
    if arr.ndim == 3:
        keys, counts = np.unique(color_keys(arr)[hit], return_counts=True)
        skip = {_key(c) for c in declared}
        return {int(k): int(n) for k, n in zip(keys, counts, strict=True) if int(k) not in skip}
    vals, counts = np.unique(arr[hit], return_counts=True)
    skip_values = set(declared)
    pairs = zip(vals, counts, strict=True)
    return {v.item(): int(n) for v, n in pairs if v.item() not in skip_values}


def _text(key: Any, colour: bool, hexa: bool) -> str:
    if not colour:
        return str(key)
    rgb = f"({key >> 16},{(key >> 8) & 255},{key & 255})"
    return f"#{key:06x} {rgb}" if hexa else rgb
