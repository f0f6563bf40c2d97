"""The ARAS400k folder layout: ``ROOT/{split}/{images,masks}/NAME.ext``, pairs matched by stem.

:func:`scan_folder` pairs a split folder's images and masks by file stem and fails with one line
naming the folder or file when anything is off; files that are not samples are set aside and
named by :func:`skipped_message`. A :class:`Pair` is also what a shard set's items are read as
(:mod:`lale.data.shards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lale.data.io.encoded import FileSource
from lale.data.io.files import IMAGE_SUFFIXES, MASK_SUFFIXES
from lale.errors import DataError

__all__ = ["Pair", "list_names", "scan_folder", "skipped_message"]

# Files that may sit beside rasters without being samples (GDAL and world-file side-cars).
_SIDECARS = (".aux.xml", ".ovr", ".tfw", ".pgw", ".jgw", ".wld", ".prj", ".msk")
_LIST = 5  # names listed in a message before "… and N more"


def list_names(items: Sequence[str]) -> str:
    """The first few of ``items``, comma-separated, then "… and N more"."""
    shown = ", ".join(items[:_LIST])
    return shown + (f", … and {len(items) - _LIST} more" if len(items) > _LIST else "")


@dataclass(frozen=True)
class Pair:
    """An image and its mask.

    Attributes:
        name: The shared file stem.
        image: Path of the image (or the image held in a shard, named by its path).
        mask: Path of the mask (or the mask held in a shard).
    """

    name: str
    image: FileSource
    mask: FileSource


def _files(
    folder: Path, suffixes: frozenset[str], what: str, skipped: list[Path] | None
) -> dict[str, Path]:
    """Stem → path of the sample files in ``folder``; other files go to ``skipped``."""
    if not folder.is_dir():
        raise DataError(folder, f"no {what} folder")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.lower().endswith(_SIDECARS) or p.is_dir():
            continue
        if p.name.startswith(".") or p.suffix.lower() not in suffixes:
            if skipped is not None:  # README.txt, .DS_Store, Thumbs.db, …
                skipped.append(p)
        elif p.stem in found:
            raise DataError(p, f"same stem as {found[p.stem].name}; one file per sample")
        else:
            found[p.stem] = p
    return found


def skipped_message(skipped: Sequence[Path]) -> str:
    """One line listing the files a scan skipped (empty when there are none)."""
    if not skipped:
        return ""
    folders = sorted({str(p.parent) for p in skipped})
    where = folders[0] if len(folders) == 1 else f"{len(folders)} folders"
    names = list_names([p.name for p in skipped])
    return f"skipped {len(skipped)} files that are not images or masks in {where}: {names}"


def scan_folder(root: str | Path, split: str, skipped: list[Path] | None = None) -> list[Pair]:
    """The image/mask pairs of the split folder ``root/split``, sorted by name.

    Files of other types (``README.txt``, ``.DS_Store``, ``Thumbs.db``, hidden files) are not
    samples: they are appended to ``skipped`` (see :func:`skipped_message`) and left alone.

    Raises:
        DataError: The split or one of its folders is missing or empty, or has images without
            masks or masks without images (listed).
    """
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise DataError(split_dir, f"no {split!r} split folder")
    images = _files(split_dir / "images", IMAGE_SUFFIXES, "images", skipped)
    masks = _files(split_dir / "masks", MASK_SUFFIXES, "masks", skipped)
    if not images and not masks:
        raise DataError(split_dir, "empty split: no images and no masks")
    if lonely := sorted(set(images) - set(masks)):
        raise DataError(
            split_dir / "images",
            f"{len(lonely)} images without masks: {list_names([images[s].name for s in lonely])}",
        )
    if lonely := sorted(set(masks) - set(images)):
        raise DataError(
            split_dir / "masks",
            f"{len(lonely)} masks without images: {list_names([masks[s].name for s in lonely])}",
        )
    return [Pair(s, images[s], masks[s]) for s in sorted(images)]
