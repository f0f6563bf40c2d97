"""Reading a shard set's samples back by index: :class:`ShardStore` and :func:`shard_pairs`.

The encoded files of a split's items come back through ``litdata.StreamingDataset`` random
access, from local chunk files or, for a mirrored remote set (:mod:`lale.data.shards.remote`),
from object storage; :mod:`lale.data.io` decodes them as it decodes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lale.data.io.encoded import EncodedFile
from lale.data.io.layout import Pair
from lale.data.shards.layout import check_chunks, read_index, read_manifest
from lale.data.shards.remote import RemoteShards, read_remote, streaming_dataset
from lale.errors import DataError, cause_text

__all__ = ["ShardStore", "shard_pairs"]


class ShardStore:
    """The encoded files of one split's LitData chunks, read by item index.

    The ``litdata.StreamingDataset`` is opened on first use in each process (DataLoader workers
    and DDP ranks open their own); the last item read is kept, since an image and its mask are
    read one after the other. Items are decoded one at a time (``batch_decode=False``): lale's
    order is random across chunks, so LitData's decoding of a window of neighbours is wasted.

    Args:
        split_dir: The split's chunk folder.
    """

    def __init__(
        self,
        split_dir: Path,
        chunks: list[tuple[str, int]] | None = None,
        remote: RemoteShards | None = None,
    ) -> None:
        self.split_dir = split_dir
        self.chunks = chunks or []
        self.remote = remote
        self._dataset: Any = None
        self._last: tuple[int, dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_dataset=None, _last=None)
        return state

    def where(self, index: int) -> Path | str:
        """The chunk file (or URL) that holds item ``index`` (the split if it is not known)."""
        start = 0
        base: Path | str = self.split_dir
        if self.remote is not None:
            base = self.remote.split_url(self.split_dir.name)
        for name, count in self.chunks:
            if index < start + count:
                return f"{base}/{name}" if isinstance(base, str) else base / name
            start += count
        return base

    def read(self, index: int, key: str) -> bytes:
        if self._last is None or self._last[0] != index:
            if self._dataset is None:
                self._dataset = streaming_dataset(self.split_dir, self.remote)
            if self.remote is None:
                self._last = (index, self._dataset[index])
            else:
                try:
                    self._last = (index, self._dataset[index])
                except Exception as err:  # the store's client raises its own types
                    raise DataError(
                        self.where(index), f"unreadable ({cause_text(err).splitlines()[0]})"
                    ) from None
        value = self._last[1][key]
        return value.tobytes() if hasattr(value, "tobytes") else bytes(value)


def shard_pairs(root: str | Path, split: str) -> tuple[list[Pair], list[tuple[int, int]]]:
    """The image/mask pairs of ``split`` in shard set ``root``, and their sizes, in item order.

    Raises:
        DataError: The split is not in the shard set, its indexes are bad, or a chunk file is
            missing or of another size than its index records.
    """
    root = Path(root)
    manifest = read_manifest(root)
    if split not in manifest.get("splits", {}):
        have = ", ".join(sorted(manifest.get("splits", {}))) or "none"
        raise DataError(root / split, f"no {split!r} split in the shard set (it has: {have})")
    split_dir = root / split
    index = read_index(split_dir)
    remote = read_remote(root)
    chunks = check_chunks(split_dir, len(index.names), local=remote is None)
    store = ShardStore(split_dir, chunks, remote)
    pairs = [
        Pair(
            name,
            EncodedFile(split_dir / "images" / image, store, i, "image"),
            EncodedFile(split_dir / "masks" / mask, store, i, "mask"),
        )
        for i, (name, image, mask) in enumerate(
            zip(index.names, index.images, index.masks, strict=True)
        )
    ]
    return pairs, index.sizes
