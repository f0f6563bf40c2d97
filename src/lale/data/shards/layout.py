"""The shard-set layout on disk: the manifest, the per-split indexes and LitData's chunk index.

``lale pack`` (:mod:`lale.data.shards.pack`) writes ``SHARDS/lale-shards.json`` (the manifest),
the dataset's ``schema.json`` and ``prepare.json``, and per split a LitData chunk folder
``SHARDS/{split}/`` (``chunk-*.bin`` + ``index.json``, items ``{"image", "mask"}``: the encoded
files' bytes as uint8 arrays, in the split's sorted name order) with
``SHARDS/{split}/lale-index.json`` (file names and sizes). Images and masks stay the encoded
files they were (:mod:`lale.data.shards.store` reads them back). Sample ``i`` of a split is the
``i``-th pair of the folder it was packed from, so the training order, crops and metrics are
those of the folder (docs/design.md#shards).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lale.errors import DataError

__all__ = [
    "FORMAT",
    "INDEX",
    "LITDATA_INDEX",
    "MANIFEST",
    "ShardIndex",
    "check_chunks",
    "is_shards",
    "read_chunk_index",
    "read_index",
    "read_manifest",
    "split_order",
]

MANIFEST = "lale-shards.json"
"""The file that marks a folder as a lale shard set."""
INDEX = "lale-index.json"
"""Per split: sample names, file names and sizes, in item order."""
FORMAT = "litdata-1"


def split_order(split: str) -> tuple[int, str]:
    """Sort key: train, val, test, then other splits by name."""
    return ({"train": 0, "val": 1, "test": 2}.get(split, 3), split)


def is_shards(root: str | Path) -> bool:
    """Whether ``root`` is a shard set written by ``lale pack``."""
    return (Path(root) / MANIFEST).is_file()


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "missing; not a complete shard set (rerun lale pack)") from None
    except (OSError, ValueError) as err:
        raise DataError(path, f"unreadable ({err})") from None


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of shard set ``root``.

    Raises:
        DataError: It is missing, unreadable or of another format.
    """
    path = Path(root) / MANIFEST
    manifest = _load(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(path, f"not a lale shard manifest of format {FORMAT!r}")
    return manifest


@dataclass(frozen=True)
class ShardIndex:
    """What ``lale-index.json`` says about a split's items, in item order.

    Attributes:
        names: Sample names (file stems).
        images: Image file names.
        masks: Mask file names.
        sizes: ``(height, width)`` of each sample.
    """

    names: list[str]
    images: list[str]
    masks: list[str]
    sizes: list[tuple[int, int]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "images": self.images,
            "masks": self.masks,
            "sizes": [list(s) for s in self.sizes],
        }


def read_index(split_dir: Path) -> ShardIndex:
    """The ``lale-index.json`` of one split folder.

    Raises:
        DataError: It is missing, unreadable or inconsistent.
    """
    path = split_dir / INDEX
    raw = _load(path)
    try:
        index = ShardIndex(
            [str(n) for n in raw["names"]],
            [str(n) for n in raw["images"]],
            [str(n) for n in raw["masks"]],
            [(int(h), int(w)) for h, w in raw["sizes"]],
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"malformed shard index ({err!r})") from None
    n = len(index.names)
    if not n or not len(index.images) == len(index.masks) == len(index.sizes) == n:
        raise DataError(path, "malformed shard index (empty, or lists of different lengths)")
    return index


LITDATA_INDEX = "index.json"
"""LitData's own chunk index in each split folder."""


def read_chunk_index(split_dir: Path) -> list[tuple[str, int, int]]:
    """``(chunk file, items, bytes)`` of each chunk in LitData's ``index.json`` of a split.

    Raises:
        DataError: The index is missing, unreadable or malformed.
    """
    path = split_dir / LITDATA_INDEX
    raw = _load(path)
    try:
        return [
            (str(c["filename"]), int(c["chunk_size"]), int(c["chunk_bytes"])) for c in raw["chunks"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"malformed LitData chunk index ({err!r})") from None


def check_chunks(split_dir: Path, items: int, *, local: bool = True) -> list[tuple[str, int]]:
    """``(chunk file, items in it)`` from LitData's ``index.json``, each chunk checked on disk.

    Every chunk the index lists must exist with the size it records, and the chunks together
    must hold the ``items`` samples that ``lale-index.json`` names. A mirrored remote split
    (``local=False``) has no chunk files on disk; only the counts are checked.

    Raises:
        DataError: The index is unreadable or malformed, or a chunk is missing or of another
            size (names the file).
    """
    path = split_dir / LITDATA_INDEX
    chunks = read_chunk_index(split_dir)
    listed = sum(n for _, n, _ in chunks)
    if listed != items:
        raise DataError(path, f"lists {listed} items but {INDEX} names {items} samples")
    for name, _, size in chunks if local else []:
        chunk = split_dir / name
        if not chunk.is_file():
            raise DataError(chunk, "missing chunk file; not a complete shard set (rerun lale pack)")
        if (actual := chunk.stat().st_size) != size:
            raise DataError(chunk, f"chunk file is {actual} bytes but {LITDATA_INDEX} says {size}")
    return [(name, n) for name, n, _ in chunks]
