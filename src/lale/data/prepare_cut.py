"""Cutting prepared tiles into patches: read each window, check it, stage the kept ones."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.io import DatasetReader
from rasterio.windows import Window

from lale.data.aras import ARAS400K, WATER
from lale.data.png import write_png
from lale.data.prepare_summary import DropReason, ImageryRecord, PrepareSummary
from lale.data.rasters import open_raster, read_image_window, scale_to_uint8, warp_labels
from lale.data.splits import BlockKey, block_of
from lale.data.worldcover import CODE_TO_CLASS, NODATA_MARK, OUTSIDE_MARK, UNKNOWN_MARK
from lale.progress import ProgressFn

if TYPE_CHECKING:
    from lale.data.prepare import PrepareOptions

__all__ = ["PatchBlock", "cut_patches"]


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


def _write_patch(
    staging: Path,
    name: str,
    image: NDArray[np.uint8],
    classes: NDArray[np.uint8],
    src: DatasetReader,
    window: Window,
) -> None:
    if image.shape[0] == 3:
        write_png(staging / "images" / f"{name}.png", np.moveaxis(image, 0, -1))
    else:
        with rasterio.open(
            staging / "images" / f"{name}.tif",
            "w",
            driver="GTiff",
            width=image.shape[2],
            height=image.shape[1],
            count=image.shape[0],
            dtype="uint8",
            crs=src.crs,
            transform=src.window_transform(window),
            compress="deflate",
        ) as dst:
            dst.write(image)
    write_png(staging / "masks" / f"{name}.png", ARAS400K.labels_to_rgb(classes), zlib.Z_RLE)


def cut_patches(
    records: Sequence[ImageryRecord],
    label_paths: Sequence[Path],
    staging: Path,
    summary: PrepareSummary,
    progress: ProgressFn | None,
) -> dict[BlockKey, PatchBlock]:
    """Look at every window of every tile; stage the kept patches and group them in blocks."""
    options = summary.options
    blocks: dict[BlockKey, PatchBlock] = {}
    done = 0
    for record in records:
        with ExitStack() as stack:
            src = stack.enter_context(open_raster(record.info.path))
            srcs = [stack.enter_context(open_raster(label_paths[j])) for j in record.labels]
            for row, col in itertools.product(range(record.rows), range(record.cols)):
                result = _window(src, srcs, record, row, col, options, summary)
                if isinstance(result, str):
                    summary.dropped[result] += 1
                else:
                    image, classes = result
                    stem = record.info.path.stem
                    name = f"{stem}_r{row}_c{col}"
                    window = Window(col * options.patch, row * options.patch, *classes.shape[::-1])
                    _write_patch(staging, name, image, classes, src, window)
                    block = blocks.setdefault(block_of(stem, row, col, options.block), PatchBlock())
                    block.names.append(name)
                    block.pixels += np.bincount(classes.ravel(), minlength=ARAS400K.num_classes)
                done += 1
                if progress is not None:
                    progress(done, summary.windows)
    return blocks
