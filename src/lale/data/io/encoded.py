"""Image and mask files held as their encoded bytes (inside a shard set, or in memory).

A sample's image or mask is a PNG/JPEG/TIFF file whether it sits in a folder or inside a shard:
:class:`EncodedFile` keeps the path it had in its dataset (for messages and for its type, taken
from the suffix) and fetches its bytes on demand, so :mod:`lale.data.io` decodes it exactly as
it decodes the file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ByteStore", "EncodedFile", "FileSource", "HeldBytes", "source_path"]


class ByteStore(Protocol):
    """Where encoded files are kept: item ``index``'s bytes under ``key`` (``image``/``mask``)."""

    def read(self, index: int, key: str) -> bytes:
        """The bytes of item ``index``'s ``key``."""
        ...


@dataclass(frozen=True)
class HeldBytes:
    """A :class:`ByteStore` of one file's bytes, held in memory."""

    data: bytes

    def read(self, index: int, key: str) -> bytes:
        return self.data


@dataclass(frozen=True, eq=False)
class EncodedFile:
    """An image or mask file known by its dataset path, whose bytes come from a :class:`ByteStore`.

    Attributes:
        path: The path it has in its dataset (``SHARDS/train/images/NAME.png``).
        store: Where its bytes are.
        index: Its item in the store.
        key: Its field in the item.
    """

    path: Path
    store: ByteStore
    index: int = 0
    key: str = ""

    @classmethod
    def held(cls, path: str | Path, data: bytes) -> EncodedFile:
        """A file of ``data`` held in memory, named ``path``."""
        return cls(Path(path), HeldBytes(data))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        return self.path.suffix

    def read_bytes(self) -> bytes:
        """The encoded file."""
        return self.store.read(self.index, self.key)

    def __str__(self) -> str:
        return str(self.path)


FileSource = Path | EncodedFile
"""A file to decode: on disk, or held as bytes."""


def source_path(src: FileSource) -> Path | str:
    """The path that names ``src`` in messages.

    A file inside a shard set is named by its chunk file, the item and its dataset path
    (``SHARDS/val/chunk-0-0.bin (item 3: val/masks/a.png)``) where its store knows the chunk;
    a chunk of a remote shard set by its URL.
    """
    if not isinstance(src, EncodedFile):
        return src
    where = getattr(src.store, "where", None)
    if where is None:
        return src.path
    found = where(src.index)
    if isinstance(found, str):
        return f"{found} (item {src.index}: {'/'.join(src.path.parts[-3:])})"
    chunk = Path(found)
    inside = (
        src.path.relative_to(chunk.parent.parent)
        if chunk.parent.parent in src.path.parents
        else src.path
    )
    return Path(f"{chunk} (item {src.index}: {inside})")
