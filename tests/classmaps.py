"""Small lale class maps and zone layers made by code, for the map-product tests."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray

from tests.rasters import UTM_10M, UTM_35N, write_geotiff

NAMES = ("water", "forest", "crop")
COLOURS = ((0, 0, 255), (0, 128, 0), (255, 200, 0))


def write_class_map(
    path: Path,
    classes: NDArray[np.uint8],
    *,
    names: Sequence[str] | None = NAMES,
    colours: Sequence[tuple[int, int, int]] | None = COLOURS,
    crs: Any = UTM_35N,
    transform: Affine = UTM_10M,
) -> Path:
    """A class map as ``lale predict`` writes it: uint8, no-data 255, ``classes`` tag, colours."""
    tags = None if names is None else {"classes": json.dumps(list(names))}
    write_geotiff(path, classes[None].astype(np.uint8), crs=crs, transform=transform, nodata=255,
                  tags=tags)  # fmt: skip
    if colours is not None:
        with rasterio.open(path, "r+") as dst:
            dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(colours)})
    return path


def write_zones(path: Path, geoms: Sequence[Any], names: Sequence[str], crs: str | None) -> Path:
    """A polygon layer (GeoPackage or GeoJSON by suffix) with a ``name`` field."""
    import pyogrio
    import shapely

    wkb = np.array(shapely.to_wkb(list(geoms)), dtype=object)
    driver = "GeoJSON" if path.suffix == ".geojson" else "GPKG"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")  # crs=None on purpose
        pyogrio.raw.write(
            path, wkb, [np.array(list(names), dtype=object)], ["name"], driver=driver, crs=crs,
            geometry_type="Polygon",
        )  # fmt: skip
    return path
