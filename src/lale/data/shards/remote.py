"""Shard sets in object storage: ``lale train --data s3://bucket/shards`` streams them.

:func:`open_remote_shards` brings the small JSON files of a remote shard set (the manifest,
``schema.json``, ``prepare.json``, and per split LitData's ``index.json`` and lale's
``lale-index.json``) into a local *mirror* folder under the cache directory, with
``lale-remote.json`` naming the URL and the cache limit. The mirror is then an ordinary shard
set to the rest of lale, except that its chunk files stay remote:
:class:`lale.data.shards.store.ShardStore` reads them through ``litdata.StreamingDataset`` with
``Dir(path=mirror, url=remote)``.

Samples are read in lale's own order (random across chunks, split per rank, resumable), so the
per-rank split and exact resume are those of local shards. How chunks reach the disk depends on
the cache limit (docs/design.md#remote-shards):

* the shard set's chunks fit the limit: each chunk is downloaded whole the first time one of its
  samples is read, and kept, so later epochs read the local disk;
* they do not: each sample is fetched by a byte-range request and nothing is kept, since a
  random order over a cache smaller than the data would download a whole chunk per sample.

Credentials and endpoints come from the usual variables of the store's client library (boto3 for
``s3://``: ``AWS_ACCESS_KEY_ID`` …, ``AWS_ENDPOINT_URL`` for an S3-compatible server).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lale.data.shards.layout import INDEX, LITDATA_INDEX, MANIFEST, read_chunk_index, read_manifest
from lale.errors import DataError, cause_text

__all__ = [
    "REMOTE",
    "SHARD_SCHEMES",
    "RemoteShards",
    "default_cache_dir",
    "is_remote_shards",
    "open_remote_shards",
    "parse_cache_limit",
    "read_remote",
]

SHARD_SCHEMES = ("s3://", "gs://", "azure://")
"""Object stores LitData streams shard sets from."""
REMOTE = "lale-remote.json"
"""In a mirror folder: the remote URL the chunks are read from, and the cache limit."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def is_remote_shards(data: object) -> bool:
    """Whether ``data`` (as given to ``--data``) is a shard set in object storage."""
    return str(data).startswith(SHARD_SCHEMES)


def parse_cache_limit(text: str) -> int:
    """Bytes from ``"20GB"``, ``"512MB"``, ``"800K"`` or a plain number.

    Raises:
        ValueError: Not a size.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (write e.g. 20GB, 512MB)")
    return int(float(match[1]) * _UNITS[match[2].upper().rstrip("B") or ""])


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lale/shards`` (``~/.cache/lale/shards``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lale" / "shards"


@dataclass(frozen=True)
class RemoteShards:
    """What ``lale-remote.json`` of a mirror says.

    Attributes:
        url: The shard set's URL (no trailing slash).
        cache_limit: Bytes the chunk cache may hold.
        cached: Whether chunks are downloaded and kept (they fit the limit), or samples are
            fetched by byte ranges.
    """

    url: str
    cache_limit: int
    cached: bool

    def split_url(self, split: str) -> str:
        return f"{self.url}/{split}"


def read_remote(root: Path) -> RemoteShards | None:
    """The remote side of mirror ``root``; ``None`` for a local shard set."""
    path = root / REMOTE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return RemoteShards(str(raw["url"]), int(raw["cache_limit"]), bool(raw["cached"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(path, f"unreadable remote shard record ({err!r})") from None


def allow_plain_http() -> None:
    """Let LitData's object-store client reach an ``http://`` S3-compatible endpoint.

    LitData downloads chunks with obstore and passes it client options without ``allow_http``,
    so an ``AWS_ENDPOINT_URL=http://…`` server (MinIO on a site network, a local test server)
    fails with "BadScheme". The option is added only when the endpoint is plain HTTP.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    if not endpoint.startswith("http://"):
        return
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = "true"


def _fetch(url: str, local: Path, *, required: bool = True) -> bool:
    """Download one small file to ``local`` (atomically); ``False`` if optional and absent."""
    from litdata.streaming.downloader import get_downloader

    local.parent.mkdir(parents=True, exist_ok=True)
    part = local.with_name(local.name + ".part")
    part.unlink(missing_ok=True)
    try:
        get_downloader(url.rsplit("/", 1)[0], str(local.parent), []).download_file(url, str(part))
    except Exception as err:  # boto3 / gcs / azure raise their own types
        part.unlink(missing_ok=True)
        text = cause_text(err)
        missing = re.search(r"404|NoSuchKey|Not Found|does not exist", text, re.IGNORECASE)
        if missing and not required:
            local.unlink(missing_ok=True)
            return False
        what = "not found" if missing else f"unreadable ({text})"
        raise DataError(url, f"{what}; not a lale shard set, or no access") from None
    if not part.is_file():  # LitData's S3 downloader returns quietly on a missing key
        if not required:
            local.unlink(missing_ok=True)
            return False
        raise DataError(url, "not found; not a lale shard set, or no access")
    os.replace(part, local)
    return True


def _s3_sizes(url: str) -> dict[str, int]:
    """``{key: size}`` of every object under the ``s3://bucket/prefix/`` folder ``url``."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2")
    try:
        return {
            obj["Key"]: int(obj["Size"])
            for page in pages.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
            for obj in page.get("Contents", [])
        }
    except Exception as err:  # botocore's errors
        raise DataError(url, f"cannot list the chunks ({cause_text(err)})") from None


def _check_remote_chunks(url: str, root: Path, splits: list[str]) -> None:
    """Every chunk the indexes list is in the bucket with its recorded size (``s3://`` only)."""
    if not url.startswith("s3://"):
        return  # gs:// and azure:// chunks are checked when they are read
    sizes = _s3_sizes(url)
    prefix = url.removeprefix("s3://").partition("/")[2]
    for split in splits:
        for name, _, size in read_chunk_index(root / split):
            key = f"{prefix}/{split}/{name}".lstrip("/")
            where = f"{url}/{split}/{name}"
            if key not in sizes:
                raise DataError(where, "missing chunk; not a complete shard set (rerun the upload)")
            if sizes[key] != size:
                raise DataError(where, f"chunk is {sizes[key]} bytes but index.json says {size}")


def _drop_chunks(split_dir: Path) -> None:
    """Remove the cached chunk files of a split (and LitData's lock and count files)."""
    for path in split_dir.glob("chunk-*"):
        path.unlink(missing_ok=True)


def open_remote_shards(url: str, cache_dir: Path | None, cache_limit: int) -> Path:
    """The local mirror of the shard set at ``url`` (its JSON files fetched afresh).

    Args:
        url: ``s3://``, ``gs://`` or ``azure://`` folder written by ``lale pack``.
        cache_dir: Where mirrors and cached chunks live [:func:`default_cache_dir`].
        cache_limit: Bytes the cached chunks may take.

    Raises:
        DataError: The manifest or an index cannot be fetched (names the URL) or is malformed,
            or (``s3://``) a chunk it lists is missing from the bucket or of another size.
    """
    url = url.rstrip("/")
    allow_plain_http()
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    root = (cache_dir or default_cache_dir()) / key
    root.mkdir(parents=True, exist_ok=True)
    _fetch(f"{url}/{MANIFEST}", root / MANIFEST)
    manifest = read_manifest(root)
    _fetch(f"{url}/schema.json", root / "schema.json", required=False)
    _fetch(f"{url}/prepare.json", root / "prepare.json", required=False)
    total = 0
    for split in manifest.get("splits", {}):
        index = root / split / LITDATA_INDEX
        before = index.read_bytes() if index.is_file() else None
        for name in (LITDATA_INDEX, INDEX):
            _fetch(f"{url}/{split}/{name}", root / split / name)
        if before is not None and before != index.read_bytes():
            _drop_chunks(root / split)  # repacked since: cached chunks are of the old set
        total += sum(size for _, _, size in read_chunk_index(root / split))
    _check_remote_chunks(url, root, list(manifest.get("splits", {})))
    record = {"url": url, "cache_limit": cache_limit, "cached": total <= cache_limit}
    part = root / (REMOTE + ".part")
    part.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(part, root / REMOTE)
    return root


def _quiet_cache_advice(record: logging.LogRecord) -> bool:
    """Drop LitData's "max_cache_size is less than 25GB" advice: it is about eviction, which
    lale does not use (chunks are kept only when the whole set fits the limit)."""
    return "max_cache_size" not in record.getMessage()


def _all_cached(split_dir: Path) -> bool:
    """Whether every chunk of the split is in the cache, whole: it can then be read as local."""
    try:
        chunks = read_chunk_index(split_dir)
    except DataError:
        return False
    return all(
        (path := split_dir / name).is_file() and path.stat().st_size == size
        for name, _, size in chunks
    )


def streaming_dataset(split_dir: Path, remote: RemoteShards | None) -> Any:
    """The ``litdata.StreamingDataset`` of one split folder, local or mirrored.

    A mirrored split whose chunks are all in the cache (a later run, a resume, an evaluation)
    is opened as a local one: the bytes are the same, without LitData's download bookkeeping.
    """
    from litdata import StreamingDataset

    if remote is None or (remote.cached and _all_cached(split_dir)):
        return StreamingDataset(str(split_dir), batch_decode=False)
    from litdata.streaming.resolver import Dir

    allow_plain_http()
    log = logging.getLogger("litdata.streaming.dataset")
    if _quiet_cache_advice not in log.filters:
        log.addFilter(_quiet_cache_advice)
    url = remote.split_url(split_dir.name)
    dataset = StreamingDataset(
        Dir(path=str(split_dir), url=url),
        max_cache_size=remote.cache_limit,
        batch_decode=False,
    )
    # Random access fetches a sample's bytes by range by default; with a cache that holds the
    # shard set, whole chunks are downloaded once and kept instead (set before the first read).
    dataset._on_demand_bytes = not remote.cached
    return dataset
