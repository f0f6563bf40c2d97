"""Rasters where they live: ``https://``, ``s3://``, ``gs://``, ``az://`` and ``/vsi…`` inputs.

A remote raster is opened by rasterio/GDAL and read by windows with HTTP range requests, so a
window of a large Cloud-Optimized GeoTIFF costs the bytes of its tiles, not the file
(docs/design.md#remote-rasters). :data:`GDAL_REMOTE_OPTIONS` are the options that make that fast;
:func:`remote_env` sets them for one read, leaving any the user set in the environment as they
are. Credentials come from GDAL's usual variables (``AWS_ACCESS_KEY_ID`` …,
``AWS_NO_SIGN_REQUEST=YES`` for public buckets, ``AWS_S3_ENDPOINT`` for an S3-compatible server,
``GS_NO_SIGN_REQUEST``, ``AZURE_STORAGE_ACCOUNT``).
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import rasterio

__all__ = [
    "GDAL_REMOTE_OPTIONS",
    "REMOTE_SCHEMES",
    "RemoteRaster",
    "as_raster_source",
    "is_remote",
    "remote_env",
]

REMOTE_SCHEMES = ("http://", "https://", "s3://", "gs://", "az://")
"""URL schemes read through GDAL's network file systems (``/vsicurl/``, ``/vsis3/`` …)."""

GDAL_REMOTE_OPTIONS: dict[str, str] = {
    # Opening a file must not list its folder (an object store has none, and listing is slow).
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Tiles that lie next to each other in the file are fetched by one range request.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # Parallel range requests over one HTTP/2 connection where the server offers it.
    "GDAL_HTTP_MULTIPLEX": "YES",
    # A bounded cache of fetched ranges per file (bytes) and in all (MiB).
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 << 20),
    "CPL_VSIL_CURL_CACHE_SIZE": str(128 << 20),
    # Transient server errors (429, 502, 503, 504) are retried; a dead server is not waited for.
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "15",
    "GDAL_HTTP_TIMEOUT": "60",
}
"""GDAL options set while a remote raster is read; an option set in the environment wins."""


def is_remote(source: object) -> bool:
    """Whether ``source`` (a string, path or :class:`RemoteRaster`) names a remote raster."""
    if isinstance(source, RemoteRaster):
        return True
    text = str(source)
    return text.startswith(REMOTE_SCHEMES) or text.startswith("/vsi")


def as_raster_source(source: object) -> Path | RemoteRaster:
    """``source`` as a :class:`RemoteRaster` if it names one, else as a local ``Path``."""
    if isinstance(source, RemoteRaster):
        return source
    return RemoteRaster(str(source)) if is_remote(source) else Path(str(source))


def remote_env() -> rasterio.Env:
    """A ``rasterio.Env`` with :data:`GDAL_REMOTE_OPTIONS`, less those set in ``os.environ``."""
    options = {k: v for k, v in GDAL_REMOTE_OPTIONS.items() if k not in os.environ}
    return rasterio.Env(**options)


@dataclass(frozen=True)
class RemoteRaster:
    """A raster named by URL, with the path-like parts outputs are named from.

    ``pathlib.Path`` would fold ``https://`` into ``https:/``; this keeps the URL as given.

    Attributes:
        url: ``https://…``, ``s3://bucket/key``, ``gs://…``, ``az://…`` or a ``/vsi…`` path.
        label: Base name for the outputs instead of the URL's file stem (a STAC item's id).
    """

    url: str
    label: str | None = None

    def __str__(self) -> str:
        return self.url

    @property
    def _key(self) -> PurePosixPath:
        path = urlsplit(self.url).path if "://" in self.url else self.url
        return PurePosixPath(posixpath.normpath(path or "/"))

    @property
    def name(self) -> str:
        """The last part of the URL's path (``scene.tif``), without query."""
        return self._key.name or self.url

    @property
    def stem(self) -> str:
        """``label`` if given, else :attr:`name` without its suffix."""
        return self.label or self._key.stem or "remote"

    @property
    def suffix(self) -> str:
        """The suffix of :attr:`name` (``.tif``)."""
        return self._key.suffix


def remote_problem(err: BaseException) -> str:
    """What a failed remote open or read says, in words: HTTP status, timeout, or GDAL's text."""
    from lale.errors import cause_text

    text = cause_text(err)
    code = re.search(r"HTTP (?:response )?(?:code|error)[: ]*(\d{3})", text)
    if code is not None:
        status = int(code[1])
        meaning = _HTTP.get(status, "the server refused the request")
        return f"{meaning} (HTTP {status})"
    if re.search(r"timed? ?out", text, re.IGNORECASE):
        return f"the server did not answer in time ({text})"
    if "does not exist in the file system" in text:
        return "not found, or the server refused it (no HTTP status reported)"
    return f"unreadable remote raster ({text})"


_HTTP = {
    400: "bad request",
    401: "authentication needed: set the credentials GDAL reads",
    403: "access denied: check the credentials or the URL's signature",
    404: "not found",
    416: "the server refused the byte range",
    429: "too many requests, still refused after retries",
}
