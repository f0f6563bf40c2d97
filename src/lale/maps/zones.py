"""Zones read from a polygon layer (GeoPackage, GeoJSON, Shapefile, …) into a map's CRS.

Read with pyogrio's raw API (GDAL/OGR, no GeoPandas needed: WKB geometries and field arrays),
reprojected with pyproj after densifying every edge (:func:`shapely.segmentize`, 1/64 of the
layer's extent) so that long straight edges follow the target projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lale.errors import DataError

__all__ = ["Zone", "read_zones"]

_DENSIFY = 64  # edge pieces per layer extent when reprojecting


@dataclass(frozen=True)
class Zone:
    """One zone: its name (the ``--by`` field, else its 1-based position) and geometry.

    ``geometry`` is a shapely geometry in the map's CRS, or ``None`` where the feature has none.
    """

    name: str
    geometry: Any


def _reproject(geoms: Any, src: Any, dst: Any) -> Any:
    import numpy as np
    import pyproj
    import shapely

    valid = geoms[~shapely.is_missing(geoms)]
    if len(valid) == 0:
        return geoms
    x0, y0, x1, y1 = shapely.total_bounds(valid)
    step = max(x1 - x0, y1 - y0) / _DENSIFY
    if step > 0:
        geoms = shapely.segmentize(geoms, step)
    forward = pyproj.Transformer.from_crs(src, dst, always_xy=True)

    def move(coords: Any) -> Any:
        x, y = forward.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, move)


def read_zones(path: Path, by: str | None, map_crs: Any) -> list[Zone]:
    """The zones of the layer at ``path``, named by field ``by``, in ``map_crs``.

    Args:
        path: A vector file GDAL reads (its first layer is used).
        by: The field naming each zone, or ``None`` to number them.
        map_crs: The map's CRS (rasterio CRS) or ``None``.

    Raises:
        DataError: Unreadable file, no such field, no polygons, or a CRS on one side only.
    """
    import numpy as np
    import pyogrio
    import shapely
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError

    try:
        info = pyogrio.read_info(path)
    except (DataSourceError, DataLayerError, OSError) as err:
        reason = str(err).split("; It might help")[0].rstrip(".")  # drop GDAL's driver hint
        raise DataError(path, f"cannot read it as a vector layer: {reason}") from None
    fields = [str(f) for f in info["fields"]]
    if by is not None and by not in fields:
        raise DataError(path, f"no field {by!r}; its fields are: {', '.join(fields) or 'none'}")
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, columns=[by] if by else [])
    except (DataSourceError, DataLayerError, FieldError, OSError) as err:
        raise DataError(path, f"cannot read its features: {err}") from None
    if len(wkb) == 0:
        raise DataError(path, "holds no features")
    geoms = shapely.from_wkb(wkb)
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    if not kinds <= {3, 6, 7}:  # Polygon, MultiPolygon, GeometryCollection
        raise DataError(path, "holds geometries other than polygons; zones must be polygons")
    zone_crs = meta.get("crs")
    if (zone_crs is None) != (map_crs is None):
        side = "the zones have a CRS and the map has none" if map_crs is None else "no CRS"
        raise DataError(path, f"cannot place the zones on the map: {side}")
    if zone_crs is not None:
        import pyproj

        src, dst = pyproj.CRS.from_user_input(zone_crs), pyproj.CRS.from_wkt(map_crs.to_wkt())
        if not src.equals(dst):
            geoms = _reproject(geoms, src, dst)
    names = [str(v) for v in columns[0]] if by else [str(i + 1) for i in range(len(geoms))]
    return [
        Zone(name, None if shapely.is_missing(g) or g.is_empty else g)
        for name, g in zip(names, np.asarray(geoms), strict=True)
    ]
