"""STAC items as ``lale predict`` inputs: bands picked by common name, read by windows.

``lale predict --stac ITEM`` reads a STAC Item, an ItemCollection or a saved search result
(a GeoJSON FeatureCollection of items) with pystac, from a file or a URL. Each item becomes one
input named by its id:

- ``--asset visual`` takes one asset with all its bands (the true-colour COG of Sentinel-2 items);
- ``--assets red,green,blue`` takes one band per name, in model order. A name is an asset key, or
  a band's ``eo:bands`` common name (or band name) of STAC 1.0, or ``eo:common_name`` of STAC 1.1
  ``bands``. Where several assets carry the name, a GeoTIFF is taken before other formats.

Bands at different resolutions are resampled (bilinear) onto the grid of the finest one by
windows through a GDAL warped VRT: nothing is downloaded whole. The DN offset of a band comes from
its ``raster:bands`` ``offset``/``scale`` when the scale is Sentinel-2's 1/10000, else from the
file's tags. The item's id and datetime go into the class map's tags and the area table.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import numpy as np
from numpy.typing import NDArray
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window as RioWindow

from lale.data.io.rasters import QUANTIFICATION, band_offsets, open_raster, read_image_window
from lale.data.io.remote import RemoteRaster, is_remote, remote_env, remote_problem
from lale.errors import DataError, UsageError, cause_text
from lale.inference.inputs import StacBand, StacInput
from lale.inference.scene import Scene
from lale.inference.tiling import Window

__all__ = ["StackedScene", "read_stac"]

_TIFF = "image/tiff"


def _read_json(href: str) -> Any:
    """The JSON document at ``href`` (a file or an http(s) URL), through pystac's reader."""
    import pystac

    try:
        return pystac.StacIO.default().read_json(href)
    except FileNotFoundError:
        raise DataError(href, "STAC file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(href, f"not JSON ({err})") from None
    except Exception as err:  # urllib's HTTP and network errors, OS errors
        raise DataError(href, f"unreadable STAC document ({cause_text(err)})") from None


def _absolute(href: str, base: str) -> str:
    if is_remote(href) or Path(href).is_absolute() or urlsplit(href).scheme:
        return href
    if is_remote(base):
        return urljoin(base, href)
    return str((Path(base).resolve().parent / href).resolve())


def _asset_bands(asset: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-band descriptions of an asset: STAC 1.1 ``bands`` or 1.0 ``eo:bands``."""
    bands = asset.get("bands") or asset.get("eo:bands") or []
    return [b for b in bands if isinstance(b, dict)]


def _band_names(band: dict[str, Any]) -> set[str]:
    names = {band.get("common_name"), band.get("eo:common_name"), band.get("name")}
    return {n.lower() for n in names if isinstance(n, str)}


def _dn_offset(asset: dict[str, Any], index: int) -> int | None:
    raster = asset.get("raster:bands") or []
    if index >= len(raster) or not isinstance(raster[index], dict):
        return None
    scale, offset = raster[index].get("scale"), raster[index].get("offset")
    if not isinstance(scale, int | float) or not isinstance(offset, int | float):
        return None
    if not math.isclose(scale, 1 / QUANTIFICATION, rel_tol=1e-6):
        return None
    return round(offset / scale)


def _is_tiff(asset: dict[str, Any]) -> bool:
    return _TIFF in str(asset.get("type", "")) or str(asset.get("href", "")).lower().endswith(
        (".tif", ".tiff")
    )


def _pick(item: dict[str, Any], where: str, name: str) -> tuple[str, int]:
    """The asset key and 0-based band index that ``name`` stands for."""
    assets: dict[str, dict[str, Any]] = item["assets"]
    if name in assets:
        if len(_asset_bands(assets[name])) > 1:
            raise DataError(
                where,
                f"asset {name!r} has {len(_asset_bands(assets[name]))} bands; pick them by "
                "common name, or take it whole with --asset",
            )
        return name, 0
    found = [
        (key, i)
        for key, asset in assets.items()
        for i, band in enumerate(_asset_bands(asset))
        if name.lower() in _band_names(band)
    ]
    if not found:
        known = sorted(
            {n for a in assets.values() for b in _asset_bands(a) for n in _band_names(b)}
        )
        raise DataError(
            where,
            f"no asset or band named {name!r} (assets: {', '.join(assets)}; band names: "
            f"{', '.join(known) or 'none'})",
        )
    tiffs = [f for f in found if _is_tiff(assets[f[0]])]
    return (tiffs or found)[0]


def _item_input(
    item: dict[str, Any], source: str, assets: Sequence[str] | None, asset: str | None
) -> StacInput:
    item_id = str(item.get("id") or "")
    if not item_id or not isinstance(item.get("assets"), dict):
        raise DataError(source, "a STAC item needs an id and assets")
    where = f"{source}#{item_id}"
    files: dict[str, dict[str, Any]] = item["assets"]
    bands: list[StacBand] = []
    if asset is not None:
        if asset not in files:
            raise DataError(where, f"has no asset {asset!r} (assets: {', '.join(files)})")
        href = _absolute(str(files[asset].get("href", "")), source)
        count = max(len(_asset_bands(files[asset])), 1)
        bands = [StacBand(asset, href, i + 1, _dn_offset(files[asset], i)) for i in range(count)]
        if not _asset_bands(files[asset]):  # band count unknown until the file is opened
            bands = [StacBand(asset, href, 0)]
    else:
        for name in assets or ():
            key, index = _pick(item, where, name)
            href = _absolute(str(files[key].get("href", "")), source)
            bands.append(StacBand(key, href, index + 1, _dn_offset(files[key], index)))
    properties = item.get("properties") or {}
    when = properties.get("datetime")
    return StacInput(item_id, when if isinstance(when, str) else None, source, tuple(bands))


def read_stac(
    href: str, assets: Sequence[str] | None = None, asset: str | None = None
) -> list[StacInput]:
    """The inputs of a STAC Item, ItemCollection or saved search (FeatureCollection) at ``href``.

    Args:
        href: A file or an ``http(s)://`` URL.
        assets: Band names in model order (asset keys or common names).
        asset: One asset taken with all its bands (``visual``).

    Raises:
        UsageError: Neither or both of ``assets`` and ``asset``.
        DataError: The document is missing or not STAC, or an item lacks a wanted band; the
            message names the file and the item.
    """
    if (asset is None) == (not assets):
        raise UsageError("give the bands as --assets red,green,blue or one --asset visual")
    doc = _read_json(href)
    if not isinstance(doc, dict):
        raise DataError(href, "not a STAC Item, ItemCollection or FeatureCollection")
    if doc.get("type") == "Feature":
        items = [doc]
    elif doc.get("type") == "FeatureCollection":
        items = [f for f in doc.get("features") or [] if isinstance(f, dict)]
        if not items:
            raise DataError(href, "the collection holds no items")
    else:
        raise DataError(href, "not a STAC Item, ItemCollection or FeatureCollection")
    return [_item_input(item, href, assets, asset) for item in items]


class StackedScene(Scene):
    """A STAC item's bands stacked on the finest band's grid, read by windows.

    Each asset file is opened once; files on a coarser grid are read through a warped VRT onto
    the finest grid (bilinear).
    """

    def __init__(self, item: StacInput) -> None:
        self.path = item
        self.item = item
        self._stack = contextlib.ExitStack()
        try:
            self._open(item)
        except BaseException:
            self._stack.close()
            raise
        self.tags = {
            "stac_item": item.item_id,
            "stac_source": item.source,
            "stac_bands": self.describe(),
        }
        if item.datetime is not None:
            self.tags["datetime"] = item.datetime

    def _open(self, item: StacInput) -> None:
        if any(is_remote(b.href) for b in item.bands):
            self._stack.enter_context(remote_env())
        files: dict[str, Any] = {}
        for b in item.bands:
            if b.href not in files:
                source = RemoteRaster(b.href) if is_remote(b.href) else Path(b.href)
                files[b.href] = self._stack.enter_context(open_raster(source))
        bands = list(item.bands)
        if len(bands) == 1 and bands[0].band == 0:  # a whole asset without band metadata
            src = files[bands[0].href]
            count = src.count - (src.count > 1 and src.colorinterp[-1] == ColorInterp.alpha)
            bands = [StacBand(bands[0].asset, bands[0].href, i + 1) for i in range(count)]
        finest = min(files.values(), key=lambda s: abs(s.transform.a * s.transform.e))
        dtypes = {files[b.href].dtypes[b.band - 1] for b in bands}
        if len(dtypes) > 1:
            raise DataError(str(item), f"bands of different sample types ({', '.join(dtypes)})")
        self.height, self.width = finest.height, finest.width
        self.crs, self.transform = finest.crs, finest.transform
        self.count, self.dtype = len(bands), np.dtype(dtypes.pop()).name
        self.src = finest  # block shapes for the GDAL cache size
        self._readers: list[tuple[Any, int, StacBand]] = []
        for b in bands:
            src = files[b.href]
            if src.count < b.band:
                raise DataError(b.href, f"has {src.count} bands; the item says band {b.band}")
            same = src.crs == finest.crs and src.transform == finest.transform
            same = same and (src.height, src.width) == (self.height, self.width)
            if not same:
                src = self._stack.enter_context(
                    WarpedVRT(
                        src,
                        crs=finest.crs,
                        transform=finest.transform,
                        width=self.width,
                        height=self.height,
                        resampling=Resampling.bilinear,
                    )
                )
            self._readers.append((src, b.band, b))

    def read(self, bands: Sequence[int], window: Window) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """Selected 1-based ``bands`` of ``window``, each from its own asset file."""
        r, c, h, w = window
        data, valid = [], np.ones((h, w), dtype=bool)
        for band in bands:
            src, index, b = self._readers[band - 1]
            try:
                values, ok = read_image_window(src, [index], RioWindow(c, r, w, h))
            except RasterioError as err:
                why = remote_problem(err) if is_remote(b.href) else cause_text(err)
                raise DataError(b.href, f"unreadable window {window} ({why})") from None
            data.append(values[0])
            valid &= ok
        return np.stack(data), valid

    def dn_offsets(self, bands: Sequence[int]) -> tuple[int, ...]:
        """Each band's DN offset: from ``raster:bands``, else from its file's tags."""
        found = []
        for band in bands:
            src, index, b = self._readers[band - 1]
            found.append(
                b.dn_offset if b.dn_offset is not None else band_offsets(src, [index], None)[0]
            )
        return tuple(found)

    def describe(self) -> str:
        """Which asset and band each model band comes from."""
        return ", ".join(f"{b.asset}[{i}]" for _, i, b in self._readers)

    def close(self) -> None:
        """Release the files."""
        self._stack.close()
