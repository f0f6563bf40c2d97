"""Cutting prepared tiles into patches: read each window, check it, stage the kept ones.

Each patch is staged atomically (image, then mask) under a name fixed by its tile and window,
and each finished tile appends one line to ``.staging/journal.jsonl`` (its kept patches, block
pixel counts, drops and unknown codes). A rerun after a crash takes finished tiles from the
journal and redoes the unfinished one, keeping the patches it had already staged, so no patch
is lost or written twice.
"""

from __future__ import annotations

import itertools
import json
import os
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.io import DatasetReader
from rasterio.windows import Window

from lale.atomic import atomic_path, write_bytes_atomic
from lale.data.io.png import encode_png
from lale.data.io.rasters import open_raster, read_image_window, scale_to_uint8, warp_labels
from lale.data.prepare.options import PrepareOptions
from lale.data.prepare.splits import BlockKey, block_of
from lale.data.prepare.summary import DropReason, ImageryRecord, PrepareSummary
from lale.data.prepare.worldcover import CODE_TO_CLASS, NODATA_MARK, OUTSIDE_MARK, UNKNOWN_MARK
from lale.data.schema.aras import ARAS400K, WATER
from lale.progress import ProgressFn

__all__ = ["JOURNAL", "PatchBlock", "cut_patches"]

JOURNAL = "journal.jsonl"
"""One line per finished tile, in the staging folder."""


@dataclass
class PatchBlock:
    """Patches of one split block: their names and class pixel counts."""

    names: list[str] = field(default_factory=list)
    pixels: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(ARAS400K.num_classes, np.int64)
    )


def _window(
    src: DatasetReader,
    labels: Sequence[DatasetReader],
    record: ImageryRecord,
    row: int,
    col: int,
    options: PrepareOptions,
    summary: PrepareSummary,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]] | DropReason:
    """8-bit image and class map of one window, or why it is dropped."""
    p = options.patch
    if (row + 1) * p > src.height or (col + 1) * p > src.width:
        return "edge"
    window = Window(col * p, row * p, p, p)
    data, valid = read_image_window(src, options.bands, window)
    image = scale_to_uint8(data, record.offsets, options.scaling)
    if not image.any():
        return "image_black"
    if not valid.all():
        return "image_nodata"
    codes = warp_labels(labels, src.crs, src.window_transform(window), (p, p))
    classes = CODE_TO_CLASS[codes]
    unknown = classes == UNKNOWN_MARK
    if unknown.any():
        values, counts = np.unique(codes[unknown], return_counts=True)
        summary.unknown_codes.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    if (classes == OUTSIDE_MARK).any():
        return "label_outside"
    if (classes == NODATA_MARK).any():
        return "label_nodata"
    if unknown.any():
        return "label_unknown"
    if np.count_nonzero(classes == WATER) > options.max_water * classes.size:
        return "mostly_water"
    return image, classes


def _staged(staging: Path, name: str, ext: str) -> tuple[Path, Path]:
    return staging / "images" / f"{name}.{ext}", staging / "masks" / f"{name}.png"


def _write_patch(
    staging: Path,
    name: str,
    image: NDArray[np.uint8],
    classes: NDArray[np.uint8],
    src: DatasetReader,
    window: Window,
) -> None:
    """Stage one patch, each file atomically; the mask comes last and marks it complete."""
    image_path, mask_path = _staged(staging, name, "png" if image.shape[0] == 3 else "tif")
    if image_path.is_file() and mask_path.is_file():
        return  # staged before an interruption
    if image.shape[0] == 3:
        write_bytes_atomic(image_path, encode_png(np.moveaxis(image, 0, -1)))
    else:
        with (
            atomic_path(image_path) as tmp,
            rasterio.open(
                tmp,
                "w",
                driver="GTiff",
                width=image.shape[2],
                height=image.shape[1],
                count=image.shape[0],
                dtype="uint8",
                crs=src.crs,
                transform=src.window_transform(window),
                compress="deflate",
            ) as dst,
        ):
            dst.write(image)
    write_bytes_atomic(mask_path, encode_png(ARAS400K.labels_to_rgb(classes), zlib.Z_RLE))


def read_journal(staging: Path) -> dict[str, dict[str, Any]]:
    """Finished tiles by file stem; a line cut short by a crash is ignored."""
    entries: dict[str, dict[str, Any]] = {}
    path = staging / JOURNAL
    if not path.is_file():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        entries[entry["tile"]] = entry
    return entries


def _append_journal(staging: Path, entry: dict[str, Any]) -> None:
    with open(staging / JOURNAL, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _replay(
    entry: dict[str, Any], blocks: dict[BlockKey, PatchBlock], summary: PrepareSummary
) -> None:
    """Add a journaled tile's patches, drops and unknown codes as if it had just been cut."""
    for reason, count in entry["dropped"].items():
        summary.dropped[reason] += count
    for code, count in entry["unknown"].items():
        summary.unknown_codes[int(code)] += count
    for stem, brow, bcol, names, pixels in entry["blocks"]:
        block = blocks.setdefault((stem, brow, bcol), PatchBlock())
        block.names += names
        block.pixels += np.asarray(pixels, np.int64)


def _cut_tile(
    record: ImageryRecord,
    label_paths: Sequence[Path],
    staging: Path,
    summary: PrepareSummary,
    done: int,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Cut one tile into staged patches; returns its journal entry (summary left as it was)."""
    options = summary.options
    blocks: dict[BlockKey, PatchBlock] = {}
    dropped: dict[str, int] = {}
    unknown_before = dict(summary.unknown_codes)
    stem = record.info.path.stem
    with ExitStack() as stack:
        src = stack.enter_context(open_raster(record.info.path))
        srcs = [stack.enter_context(open_raster(label_paths[j])) for j in record.labels]
        for row, col in itertools.product(range(record.rows), range(record.cols)):
            result = _window(src, srcs, record, row, col, options, summary)
            if isinstance(result, str):
                dropped[result] = dropped.get(result, 0) + 1
            else:
                image, classes = result
                name = f"{stem}_r{row}_c{col}"
                window = Window(col * options.patch, row * options.patch, *classes.shape[::-1])
                _write_patch(staging, name, image, classes, src, window)
                block = blocks.setdefault(block_of(stem, row, col, options.block), PatchBlock())
                block.names.append(name)
                block.pixels += np.bincount(classes.ravel(), minlength=ARAS400K.num_classes)
            done += 1
            if progress is not None:
                progress(done, summary.windows)
    unknown = {
        str(code): n - unknown_before.get(code, 0)
        for code, n in summary.unknown_codes.items()
        if n != unknown_before.get(code, 0)
    }
    summary.unknown_codes.clear()  # the journal entry carries them, as for a resumed tile
    summary.unknown_codes.update(unknown_before)
    entry = {
        "tile": stem,
        "dropped": dropped,
        "unknown": unknown,
        "blocks": [[*key, b.names, b.pixels.tolist()] for key, b in blocks.items()],
    }
    return entry


def cut_patches(
    records: Sequence[ImageryRecord],
    label_paths: Sequence[Path],
    staging: Path,
    summary: PrepareSummary,
    progress: ProgressFn | None,
) -> dict[BlockKey, PatchBlock]:
    """Look at every window of every tile; stage the kept patches and group them in blocks.

    Tiles already in the staging journal are taken from it (see the module docstring).
    """
    blocks: dict[BlockKey, PatchBlock] = {}
    journal = read_journal(staging)
    done = 0
    for record in records:
        entry = journal.get(record.info.path.stem)
        if entry is None:
            entry = _cut_tile(record, label_paths, staging, summary, done, progress)
            _append_journal(staging, entry)
        done += record.rows * record.cols
        if progress is not None:
            progress(done, summary.windows)
        _replay(entry, blocks, summary)
    return blocks
