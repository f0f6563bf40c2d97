"""``lale pack``: a dataset folder (or a Hugging Face Parquet dataset) written as LitData shards.

Every split is written with ``litdata``'s ``BinaryWriter`` in the split's sample order, each
item holding the image and mask files' bytes unchanged (as uint8 arrays, which LitData reads
back one item at a time; a struct of ``bytes`` is stored as Arrow record batches that it
decodes 256 rows at a time, 3–20 ms per random read); headers are checked on the way (sizes
match, the schema's band count), so a shard set that was written is one that trains. The
class schema (with its band statistics) and ``prepare.json`` travel with it. The set is built
in a hidden folder beside ``OUT`` and renamed to ``OUT`` when complete
(:mod:`lale.data.shards.layout` describes the layout).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lale.atomic import write_json_atomic
from lale.data.io import check_image_info, read_info
from lale.data.io.complete import check_complete
from lale.data.io.encoded import FileSource, source_path
from lale.data.io.layout import scan_folder
from lale.data.schema import ClassSchema, resolve_schema, save_schema
from lale.data.shards.hf_parquet import is_parquet_source, parquet_splits
from lale.data.shards.layout import FORMAT, INDEX, MANIFEST, ShardIndex, split_order
from lale.errors import DataError, UsageError, WorkFailedError, cause_text
from lale.run_layout import DATASET_SCHEMA

if TYPE_CHECKING:
    from litdata.streaming.writer import BinaryWriter

__all__ = ["PackSummary", "PackedSplit", "pack_dataset", "parse_shard_size"]

Sample = tuple[str, FileSource, FileSource]
Progress = Callable[[int, int], None]
_COPIED = ("prepare.json",)  # dataset files that travel with the shards besides the schema


def parse_shard_size(text: str) -> int:
    """Bytes of ``"256MB"``, ``"1GB"``, ``"64KB"`` or a plain number of bytes.

    Raises:
        UsageError: Anything else.
    """
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?B?)\s*", text.upper())
    if not m or int(m.group(1)) < 1:
        raise UsageError(f"--shard-size {text!r}: give a size such as 256MB, 1GB or 64KB")
    scale = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9}
    return int(int(m.group(1)) * scale[m.group(2)])


@dataclass(frozen=True)
class PackedSplit:
    """One written split.

    Attributes:
        name: Split name.
        samples: Image/mask pairs.
        shards: Chunk files.
        bytes: Bytes of the chunk files.
    """

    name: str
    samples: int
    shards: int
    bytes: int


@dataclass(frozen=True)
class PackSummary:
    """What ``lale pack`` wrote.

    Attributes:
        out: The shard set.
        source: What it was packed from: ``"folder"`` or ``"parquet"``.
        schema: Name of the class schema stored with it.
        splits: The splits, in order.
    """

    out: Path
    source: str
    schema: str
    splits: list[PackedSplit]


def _folder_splits(root: Path) -> list[str]:
    found = [p.name for p in root.iterdir() if (p / "images").is_dir() and (p / "masks").is_dir()]
    if not found:
        raise DataError(root, "no split folders ({split}/images and {split}/masks)")
    return sorted(found, key=split_order)


def _folder_samples(root: Path, split: str) -> list[Sample]:
    return [(p.name, p.image, p.mask) for p in scan_folder(root, split)]


def _checked(image: FileSource, mask: FileSource, schema: ClassSchema) -> tuple[int, int]:
    """The pair's size, after the checks a dataset makes of its headers and completeness."""
    info, mask_info = read_info(image), read_info(mask, "mask")
    check_image_info(image, info, schema.image)
    check_complete(image)
    check_complete(mask, "mask")
    if (info.height, info.width) != (mask_info.height, mask_info.width):
        raise DataError(
            source_path(mask),
            f"mask is {mask_info.height}×{mask_info.width} but image {image.name} is "
            f"{info.height}×{info.width}",
        )
    if mask_info.count not in (1, 3, 4):
        raise DataError(source_path(mask), f"mask has {mask_info.count} bands; expected 1 or 3")
    return info.height, info.width


def _write_split(
    writer_type: type[BinaryWriter],
    samples: Iterable[Sample],
    folder: Path,
    schema: ClassSchema,
    shard_size: int,
    progress: Progress | None,
    done: int,
    grand: int,
) -> PackedSplit:
    folder.mkdir()
    writer = writer_type(str(folder), chunk_bytes=shard_size)
    index = ShardIndex([], [], [], [])
    for i, (name, image, mask) in enumerate(samples):
        index.sizes.append(_checked(image, mask, schema))
        item = {
            k: np.frombuffer(f.read_bytes(), np.uint8)
            for k, f in (("image", image), ("mask", mask))
        }
        writer.add_item(i, item)
        index.names.append(name)
        index.images.append(image.name)
        index.masks.append(mask.name)
        if progress is not None:
            progress(done + i + 1, grand)
    if not index.names:
        raise DataError(folder, "empty split: no samples")
    writer.done()
    writer.merge(1)
    write_json_atomic(folder / INDEX, index.to_dict())
    chunks = sorted(folder.glob("*.bin"))
    return PackedSplit(
        folder.name, len(index.names), len(chunks), sum(c.stat().st_size for c in chunks)
    )


def _check_out(out: Path, source: Path) -> None:
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise UsageError(f"--out {out}: must not be inside the dataset {source}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not an empty folder")


def pack_dataset(
    source: Path,
    out: Path,
    schema: str | Path | None = None,
    shard_size: int = 256_000_000,
    *,
    image_column: str = "image",
    mask_column: str | None = None,
    progress: Progress | None = None,
) -> PackSummary:
    """Write every split of ``source`` as LitData shards in the new folder ``out``.

    Args:
        source: A dataset root (``{split}/{images,masks}``) or a Parquet file or folder.
        out: The shard set to write (new, or an empty folder).
        schema: Class schema to store (default: ``source/schema.json``, else ARAS400k).
        shard_size: Bytes per chunk file.
        image_column: Parquet column of the images.
        mask_column: Parquet column of the masks (default: detected).
        progress: Called with ``(samples written, samples in all splits)``.

    Raises:
        DataError: Bad input (names the file); nothing is left at ``out``.
        UsageError: ``out`` is in the way.
        WorkFailedError: Writing failed (a full disk, …); nothing is left at ``out``.
        ImportError: LitData (and PyTorch, which it needs) is not installed; raised first.
    """
    from litdata.streaming.writer import BinaryWriter  # before any work: it needs PyTorch

    _check_out(out, source)
    parquet = is_parquet_source(source)
    if not parquet and not source.is_dir():
        raise DataError(source, "neither a dataset folder nor Parquet files")
    resolved = resolve_schema(source if source.is_dir() else source.parent, schema)
    splits: list[tuple[str, int, Iterable[Sample]]]
    if parquet:
        splits = [
            (s.name, s.rows, s.samples()) for s in parquet_splits(source, image_column, mask_column)
        ]
    else:
        listed = {name: _folder_samples(source, name) for name in _folder_splits(source)}
        splits = [(name, len(items), items) for name, items in listed.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp makes 0700
    try:
        grand, done, written = sum(n for _, n, _ in splits), 0, []
        for name, count, samples in splits:
            folder = stage / name
            written.append(
                _write_split(
                    BinaryWriter, samples, folder, resolved, shard_size, progress, done, grand
                )
            )
            done += count
        _copy_metadata(source, stage, resolved, schema is not None)
        write_json_atomic(
            stage / MANIFEST,
            {
                "format": FORMAT,
                "source": "parquet" if parquet else "folder",
                "schema": resolved.name,
                "splits": {s.name: {"samples": s.samples, "shards": s.shards} for s in written},
            },
        )
        if out.exists():
            out.rmdir()
        stage.rename(out)
    except OSError as err:  # a full disk, a lost mount, permissions: nothing is left at OUT
        shutil.rmtree(stage, ignore_errors=True)
        raise WorkFailedError(
            f"{out}: writing the shards failed ({cause_text(err)}); nothing was written there"
        ) from err
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return PackSummary(out, "parquet" if parquet else "folder", resolved.name, written)


def _copy_metadata(source: Path, stage: Path, schema: ClassSchema, named: bool) -> None:
    """The schema (the one named, else the dataset's own file as it is) and ``prepare.json``."""
    own = source / DATASET_SCHEMA
    if not named and own.is_file():
        shutil.copyfile(own, stage / DATASET_SCHEMA)
    else:
        save_schema(schema, stage / DATASET_SCHEMA)
    for name in _COPIED:
        if (source / name).is_file():
            shutil.copyfile(source / name, stage / name)
