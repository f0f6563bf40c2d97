"""The inputs of ``lale predict``: files, folders of images, glob patterns and STAC items' bands.

A folder stands for the rasters and pictures inside it (``--recursive``: in its subfolders too);
a pattern with ``*``, ``?`` or ``[`` that names no existing file is expanded by lale (``**``
descends; a matched folder counts with ``--recursive`` only), so a quoted glob works as in the
shell. A URL (``https://``, ``s3://``, ``gs://``, ``az://``, ``/vsi…``) is kept as it is and
read by windows (:mod:`lale.data.io.remote`). The list keeps the order given, sorted within
each folder or pattern, without repeats; an argument that matches nothing is an error. A STAC
item's bands are a :class:`StacInput` (found and read by :mod:`lale.inference.stac`).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lale.data.io.remote import RemoteRaster, as_raster_source
from lale.errors import DataError

__all__ = ["SCENE_SUFFIXES", "Source", "StacBand", "StacInput", "expand_inputs"]


@dataclass(frozen=True)
class StacBand:
    """One model band of an item: an asset's file and the 1-based band inside it.

    Attributes:
        asset: The asset's key.
        href: Absolute URL or path of the asset's file.
        band: 1-based band of that file.
        dn_offset: DN offset from ``raster:bands``, ``None`` to use the file's tags.
    """

    asset: str
    href: str
    band: int
    dn_offset: int | None = None


@dataclass(frozen=True)
class StacInput:
    """A STAC item's bands, as one input of ``lale predict``.

    Attributes:
        item_id: The item's id (names the outputs).
        datetime: The item's datetime (ISO 8601), ``None`` if it has a range only.
        source: The file or URL the item was read from.
        bands: The bands in model order.
    """

    item_id: str
    datetime: str | None
    source: str
    bands: tuple[StacBand, ...]

    def __str__(self) -> str:
        return f"{self.source}#{self.item_id}"

    @property
    def name(self) -> str:
        """The item's id."""
        return self.item_id

    @property
    def stem(self) -> str:
        """The item's id (the outputs' base name)."""
        return self.item_id

    @property
    def suffix(self) -> str:
        """Items are read as rasters: ``.tif``."""
        return ".tif"


Source = Path | RemoteRaster | StacInput
"""An input of ``lale predict``: a local file, a remote raster or a STAC item's bands."""

SCENE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt", ".img"})
"""Files a folder or a pattern contributes (case-insensitive); a file named directly is kept."""
_MAGIC = frozenset("*?[")


def _is_scene(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in SCENE_SUFFIXES and not path.name.startswith(".")
    )


def _scenes_in(path: Path, recursive: bool) -> list[Path]:
    files = path.rglob("*") if recursive else path.iterdir()
    return sorted(p for p in files if _is_scene(p))


def _folder(path: Path, recursive: bool) -> list[Path]:
    found = _scenes_in(path, recursive)
    if not found:
        kinds = ", ".join(sorted(SCENE_SUFFIXES))
        where = "this folder or below" if recursive else "this folder"
        hint = "" if recursive else " (add --recursive to look in subfolders)"
        raise DataError(path, f"no image files ({kinds}) in {where}{hint}")
    return found


def expand_inputs(
    args: Sequence[str | Path | RemoteRaster], recursive: bool = False
) -> list[Path | RemoteRaster]:
    """Input files of ``args``: files as given, folders and patterns expanded, no repeats.

    URLs are kept as :class:`~lale.data.io.remote.RemoteRaster` (not checked here: a missing one
    fails when it is read, on its own).

    Raises:
        DataError: An argument names no file, folder or matching pattern, or a folder holds
            no image file; the message names it.
    """
    found: list[Path | RemoteRaster] = []
    for arg in args:
        source = as_raster_source(arg)
        if isinstance(source, RemoteRaster):
            found.append(source)
            continue
        path = source
        if path.is_dir():
            found += _folder(path, recursive)
        elif path.exists():
            found.append(path)
        elif _MAGIC & set(str(arg)):
            matches = sorted(Path(m) for m in glob.glob(str(arg), recursive=True))
            files = [m for m in matches if _is_scene(m)]
            if recursive:  # a matched folder counts with --recursive only
                for folder in (m for m in matches if m.is_dir()):
                    files += _scenes_in(folder, recursive)
            if not files:
                raise DataError(path, "the pattern matches no image file")
            found += files
        else:
            raise DataError(path, "no such file or folder")
    unique: dict[object, Path | RemoteRaster] = {}
    for p in found:
        unique.setdefault(p.url if isinstance(p, RemoteRaster) else p.resolve(), p)
    return list(unique.values())
