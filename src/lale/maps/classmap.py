"""A lale class map opened for reading: class names, display colours, grid and pixel areas.

A class map is a single-band uint8 GeoTIFF whose value 255 is no-data, as ``lale predict``
writes it: class names in the ``classes`` tag (a JSON list), display colours in the colour
table. A map with a colour table but no ``classes`` tag is accepted too; its classes are then
named by index (``class 0``, ``class 1``, …) up to the highest index the map's colour table or
data uses, and :attr:`ClassMap.named_by_index` says so.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lale.errors import DataError

__all__ = ["NODATA", "ClassMap", "check_values", "open_class_map"]

NODATA = 255
"""Class-map value of no-data pixels."""

_FALLBACK_COLOURS = np.array(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    dtype=np.uint8,
)  # fmt: skip


@dataclass(frozen=True)
class ClassMap:
    """What a class map declares, read without its pixels.

    Attributes:
        path: The file.
        names: Class names by index.
        colours: ``len(names) × 3`` display colours (the colour table, else a fixed cycle).
        named_by_index: The map had no ``classes`` tag; names are ``class K``.
        crs: The map's CRS (a rasterio CRS) or ``None``.
        transform: Pixel-to-CRS transform.
        height: Rows.
        width: Columns.
    """

    path: Path
    names: tuple[str, ...]
    colours: NDArray[np.uint8]
    named_by_index: bool
    crs: Any
    transform: Any
    height: int
    width: int

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.names)


def _colour_table(src: Any) -> dict[int, tuple[int, ...]] | None:
    try:
        return dict(src.colormap(1))
    except ValueError:  # no colour table
        return None


def _highest_value(src: Any) -> int:
    """Highest class value below 255 in the map (a pass over its blocks), −1 if none."""
    high = -1
    for _, window in src.block_windows(1):
        block = src.read(1, window=window)
        valid = block[block != NODATA]
        if valid.size:
            high = max(high, int(valid.max()))
    return high


def open_class_map(path: Path) -> ClassMap:
    """Read a class map's names, colours and grid; bad files raise a one-line :class:`DataError`.

    Raises:
        DataError: Unreadable, not single-band uint8, no-data other than 255, a ``classes`` tag
            that is not a JSON list of names, or neither that tag nor a colour table.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as err:
        raise DataError(path, f"cannot read it as a raster: {err}") from None
    with src:
        if src.count != 1 or src.dtypes[0] != "uint8":
            raise DataError(
                path, f"not a class map: {src.count} band(s) of {src.dtypes[0]}, need 1 of uint8"
            )
        if src.nodata is not None and src.nodata != NODATA:
            raise DataError(path, f"not a class map: no-data is {src.nodata:g}, need 255")
        table = _colour_table(src)
        tag = src.tags().get("classes")
        if tag is not None:
            try:
                names = json.loads(tag)
            except json.JSONDecodeError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise DataError(path, "the 'classes' tag is not a JSON list of class names")
            if not 0 < len(names) < NODATA:
                raise DataError(path, f"the 'classes' tag names {len(names)} classes, need 1-254")
        elif table is None:
            raise DataError(
                path, "not a lale class map: no 'classes' tag and no colour table to name classes"
            )
        else:
            names = [f"class {k}" for k in range(_highest_value(src) + 1)] or ["class 0"]
        k = len(names)
        if table is not None:
            colours = np.array([table.get(i, (0, 0, 0, 255))[:3] for i in range(k)], np.uint8)
        else:
            colours = _FALLBACK_COLOURS[np.arange(k) % len(_FALLBACK_COLOURS)]
        return ClassMap(
            path=Path(path),
            names=tuple(names),
            colours=colours,
            named_by_index=tag is None,
            crs=src.crs,
            transform=src.transform,
            height=src.height,
            width=src.width,
        )


def check_values(path: Path, counts: NDArray[np.int64], num_classes: int) -> None:
    """Refuse a map whose value ``counts`` (256 bins) hold values between the classes and 255.

    Raises:
        DataError: Some pixel is neither a class index nor no-data.
    """
    bad = np.flatnonzero(counts[num_classes:NODATA])
    if bad.size:
        raise DataError(
            path,
            f"holds value {int(bad[0]) + num_classes}, outside the classes 0..{num_classes - 1} "
            "and no-data 255",
        )
