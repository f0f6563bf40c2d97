"""Zones read from a polygon layer (GeoPackage, GeoJSON, Shapefile, …) into a map's CRS.

Read with pyogrio's raw API (GDAL/OGR, no GeoPandas needed: WKB geometries and field arrays),
reprojected with pyproj after densifying every edge (:func:`shapely.segmentize`, 1/64 of the
layer's extent) so that long straight edges follow the target projection.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _polygonal(geom: Any) -> Any:
    """The polygonal part of ``make_valid``'s answer (it may add lines and points); ``None``."""
    import shapely

    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
    return shapely.union_all(parts) if parts else None


def _non_finite(geoms: Any) -> list[int]:
    import numpy as np
    import shapely

    return [i for i, g in enumerate(geoms) if not np.isfinite(shapely.get_coordinates(g)).all()]


def _names_listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_zones(
    path: Path, by: str | None, map_crs: Any, warn: Callable[[str], None] | None = None
) -> list[Zone]:
    """The zones of the layer at ``path``, named by field ``by``, in ``map_crs``.

    Invalid polygons (self-intersecting rings, bow ties) are repaired with shapely's
    ``make_valid``, keeping their polygonal part, and ``warn`` is told which zones they were.

    Args:
        path: A vector file GDAL reads (its first layer is used).
        by: The field naming each zone, or ``None`` to number them.
        map_crs: The map's CRS (rasterio CRS) or ``None``.
        warn: Called with one line when zones were repaired.

    Raises:
        DataError: Unreadable file, no such field, a field that names two zones alike, no
            polygons, or a CRS on one side only.
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
    names = [str(v) for v in columns[0]] if by else [str(i + 1) for i in range(len(geoms))]
    if by is not None and len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(
            path,
            f"field {by!r} does not name one zone per feature: {_names_listed(twice)} "
            f"{'is' if len(twice) == 1 else 'are'} used more than once (choose another --by)",
        )
    zone_crs = meta.get("crs")
    if (zone_crs is None) != (map_crs is None):
        side = "the zones have a CRS and the map has none" if map_crs is None else "no CRS"
        raise DataError(path, f"cannot place the zones on the map: {side}")
    if zone_crs is not None:
        import pyproj

        src, dst = pyproj.CRS.from_user_input(zone_crs), pyproj.CRS.from_wkt(map_crs.to_wkt())
        if not src.equals(dst):
            geoms = _reproject(geoms, src, dst)
            coords = shapely.get_coordinates(geoms)
            if not np.isfinite(coords).all():
                lost = sorted({names[i] for i in _non_finite(geoms)})
                raise DataError(
                    path,
                    f"zones {_names_listed(lost)} have coordinates that {src.name} cannot "
                    "place in the map's CRS (outside its valid range?)",
                )
    broken = np.flatnonzero(~(shapely.is_valid(geoms) | shapely.is_missing(geoms)))
    if len(broken):
        geoms = geoms.copy()
        geoms[broken] = [_polygonal(shapely.make_valid(g)) for g in geoms[broken]]
        if warn is not None:
            warn(
                f"warning: {path}: {len(broken)} zones had invalid polygons, repaired with "
                f"shapely's make_valid: {_names_listed([names[i] for i in broken])}"
            )
    return [
        Zone(name, None if shapely.is_missing(g) or g.is_empty else g)
        for name, g in zip(names, np.asarray(geoms), strict=True)
    ]
