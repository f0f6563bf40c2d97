"""A lale dataset as LitData shards: the layout, reading samples back, remote sets, packing.

- :mod:`lale.data.shards.layout` — the manifest, the per-split indexes, LitData's chunk index;
- :mod:`lale.data.shards.store` — :class:`ShardStore` and :func:`shard_pairs`: samples by index;
- :mod:`lale.data.shards.remote` — shard sets in object storage, mirrored and streamed;
- :mod:`lale.data.shards.hf_parquet` — image/mask pairs of a Hugging Face Parquet dataset;
- :mod:`lale.data.shards.pack` — ``lale pack``: a dataset folder or Parquet dataset as shards.

Above :mod:`lale.data.io` and :mod:`lale.data.schema`; the dataset (:mod:`lale.data.dataset`)
reads through it. The names of :mod:`~lale.data.shards.layout` and
:mod:`~lale.data.shards.store` are importable from here.
"""

from __future__ import annotations

from lale.data.shards.layout import (
    FORMAT,
    INDEX,
    LITDATA_INDEX,
    MANIFEST,
    ShardIndex,
    check_chunks,
    is_shards,
    read_chunk_index,
    read_index,
    read_manifest,
    split_order,
)
from lale.data.shards.store import ShardStore, shard_pairs

__all__ = [
    "FORMAT",
    "INDEX",
    "LITDATA_INDEX",
    "MANIFEST",
    "ShardIndex",
    "ShardStore",
    "check_chunks",
    "is_shards",
    "read_chunk_index",
    "read_index",
    "read_manifest",
    "shard_pairs",
    "split_order",
]
