"""A class schema written from what a dataset's masks hold: what ``lale schema init`` runs.

Every mask under ``DATA`` (``DATA/{split}/masks/`` or a plain folder of masks) is read; colour
masks (RGB, RGBA, palette) give one class per colour, single-band masks one class per value.
Classes are named ``class_0``, ``class_1``, … by decreasing pixel count; colours or values below
a share of the pixels are noise (anti-aliased edges, stray pixels), not classes, and stay unknown.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lale.data.io import MASK_SUFFIXES, is_geotiff, read_image, read_info
from lale.data.io.encoded import FileSource, source_path
from lale.data.schema import ClassSchema, ImageSpec
from lale.data.shards import is_shards, read_manifest, shard_pairs, split_order
from lale.errors import DataError

__all__ = ["SchemaDraft", "draft_schema", "mask_files"]

MIN_SHARE = 0.001
"""Default smallest share of all mask pixels that makes a colour or value a class."""
MAX_CLASSES = 255  # labels 0…254; 255 stays the ignore label


@dataclass(frozen=True)
class SchemaDraft:
    """A schema drawn from masks, with what was left out.

    Attributes:
        schema: The schema (colours or values, by decreasing frequency).
        files: Mask files read.
        pixels: Pixels of each class, in class order.
        dropped: Colours or values left out as noise, with their pixel counts.
        total: All mask pixels read.
    """

    schema: ClassSchema
    files: int
    pixels: tuple[int, ...]
    dropped: dict[str, int]
    total: int


def mask_files(data: Path) -> list[FileSource]:
    """The mask files of a dataset root (``*/masks/``), a shard set or a folder of masks."""
    if not data.is_dir():
        raise DataError(data, "not a folder")
    if is_shards(data):
        splits = sorted(read_manifest(data)["splits"], key=split_order)
        return [pair.mask for split in splits for pair in shard_pairs(data, split)[0]]
    folders = sorted(p for p in data.glob("*/masks") if p.is_dir()) or [data]
    files: list[FileSource] = [
        p
        for folder in folders
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MASK_SUFFIXES
    ]
    if not files:
        raise DataError(data, "no mask files (PNG or GeoTIFF) in */masks/ or in the folder")
    return files


def _encodings(path: FileSource) -> tuple[Counter[Any], bool]:
    """Pixel counts of each colour (``(r, g, b)``) or value in one mask; whether it is colour."""
    if is_geotiff(path):
        spec = ImageSpec(band_count=read_info(path, "mask").count, bands=(1,), dtype=None)
        arr: Any = read_image(path, spec)[0]
        colour = False
    else:
        with Image.open(path if isinstance(path, Path) else io.BytesIO(path.read_bytes())) as im:
            colour = im.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F", "1")
            if colour:
                im = im.convert("RGBA") if "A" in im.mode or im.mode == "P" else im.convert("RGB")
            arr = np.asarray(im)
    if colour:
        if arr.shape[-1] == 4:
            arr = arr[arr[..., 3] > 0][:, :3]  # transparent pixels carry no label
        flat = arr.reshape(-1, 3).astype(np.uint32)
        packed = flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]
        keys, counts = np.unique(packed, return_counts=True)
        pairs = zip(keys.tolist(), counts.tolist(), strict=True)
        return Counter({(k >> 16, (k >> 8) & 255, k & 255): n for k, n in pairs}), True
    values, counts = np.unique(np.asarray(arr).ravel(), return_counts=True)
    return Counter({v.item(): int(n) for v, n in zip(values, counts, strict=True)}), False


def _text(key: Any) -> str:
    return "#{:02x}{:02x}{:02x}".format(*key) if isinstance(key, tuple) else str(key)


def draft_schema(data: Path, min_share: float = MIN_SHARE, name: str | None = None) -> SchemaDraft:
    """Draw a schema from the masks under ``data``.

    Args:
        data: Dataset root or folder of masks.
        min_share: Colours or values under this share of all pixels are not classes.
        name: Schema name (default: the folder's name).

    Raises:
        DataError: No masks, unreadable masks, colour and index masks mixed, or nothing above
            ``min_share``.
    """
    totals: Counter[Any] = Counter()
    kinds: set[bool] = set()
    files = mask_files(data)
    for path in files:
        try:
            found, colour = _encodings(path)
        except (OSError, ValueError) as err:
            raise DataError(
                source_path(path), f"unreadable mask ({type(err).__name__}: {err})"
            ) from None
        totals.update(found)
        kinds.add(colour)
    if len(kinds) > 1:
        raise DataError(data, "colour masks and single-band masks mixed; one kind per dataset")
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))
    kept = [(k, n) for k, n in ranked if n >= min_share * total][:MAX_CLASSES]
    if not kept:
        raise DataError(data, f"no colour or value covers {min_share:.2%} of the mask pixels")
    keys = [k for k, _ in kept]
    names = tuple(f"class_{i}" for i in range(len(keys)))
    label = name or data.name or "custom"
    if kinds == {True}:
        schema = ClassSchema(names=names, colors=tuple(keys), name=label)
    else:
        if not all(float(k).is_integer() and k >= 0 for k in keys):
            raise DataError(data, "mask values are not non-negative integers")
        schema = ClassSchema(names=names, values=tuple(int(k) for k in keys), name=label)
    dropped = {_text(k): n for k, n in ranked if k not in set(keys)}
    return SchemaDraft(schema, len(files), tuple(n for _, n in kept), dropped, total)
