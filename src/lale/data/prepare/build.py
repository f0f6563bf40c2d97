"""Preparing an ARAS400k-layout dataset from Sentinel-2 GeoTIFF tiles and ESA WorldCover maps.

Each tile is cut into patches on its own grid, the labels are warped onto each patch's grid, the
bands scaled to 8 bits, patches dropped for the first reason in ``DROP_REASONS`` that applies, and
the rest split by spatial blocks; one window is read at a time. Output layout, drop rules and
scaling: docs/design.md#preparation. ``OUT`` must be new or empty, or hold a preparation of the
same inputs and options that was interrupted: that one is resumed (patches are staged in
``OUT/.staging`` with a journal of finished tiles; ``prepare.json`` is written, atomically, last).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.data.io.rasters import (
    Bounds,
    PrepareError,
    RasterInfo,
    band_offsets,
    open_raster,
    overlaps,
    reproject_bounds,
)
from lale.data.prepare.cut import JOURNAL, PatchBlock, cut_patches
from lale.data.prepare.options import PrepareOptions
from lale.data.prepare.splits import SPLITS, BlockKey, assign_splits
from lale.data.prepare.summary import ImageryRecord, PrepareSummary
from lale.errors import DataError
from lale.progress import ProgressFn

__all__ = ["expand_inputs", "prepare_dataset"]

RASTER_SUFFIXES = (".tif", ".tiff")
"""Files taken from an input directory."""
GDAL_CACHE_MB = 256
"""GDAL block cache while cutting: enough for a row of 1024² tiles of a 10980-px scene."""
STAGING = ".staging"
"""Folder of ``OUT`` where patches wait for their split; removed when done."""
PLAN = "plan.json"
"""Inputs and options of the preparation in the staging folder, to check a resume against."""


def expand_inputs(paths: Sequence[str | Path], what: str) -> list[Path]:
    """Files given directly, plus each directory's ``.tif``/``.tiff`` files (sorted, no repeats)."""
    if not paths:
        raise PrepareError(f"no {what} given")
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(
                f for f in path.iterdir() if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES
            )
            if not files:
                raise DataError(path, f"no .tif or .tiff files in this {what} directory")
            found += files
        elif path.exists():
            found.append(path)
        else:
            raise DataError(path, "no such file or directory")
    return list(dict.fromkeys(found))


def _inspect(
    image_paths: Sequence[Path], label_paths: Sequence[Path], options: PrepareOptions
) -> tuple[list[ImageryRecord], list[RasterInfo]]:
    """Check every input before anything is written; one-line errors name the file."""
    stems: dict[str, Path] = {}
    for path in image_paths:
        if path.stem in stems:
            raise DataError(path, f"same file stem as {stems[path.stem]} (patch names clash)")
        stems[path.stem] = path
    labels: list[tuple[RasterInfo, CRS, Bounds]] = []
    for path in label_paths:
        with open_raster(path) as src:
            if src.crs is None:
                raise DataError(path, "label raster has no CRS")
            labels.append((RasterInfo.of(src, path), src.crs, tuple(src.bounds)))
    images: list[ImageryRecord] = []
    used: set[int] = set()
    for path in image_paths:
        with open_raster(path) as src:
            if src.crs is None:
                raise DataError(path, "imagery has no CRS")
            if max(options.bands) > src.count:
                asked = ",".join(map(str, options.bands))
                raise DataError(path, f"has {src.count} band(s); bands {asked} were asked for")
            kinds = {np.dtype(src.dtypes[b - 1]).kind for b in options.bands}
            if not kinds <= set("uif"):
                raise DataError(path, f"cannot scale {src.dtypes[0]} imagery to 8 bits")
            over = tuple(
                j
                for j, (_, crs, bounds) in enumerate(labels)
                if overlaps(reproject_bounds(tuple(src.bounds), src.crs, crs), bounds)
            )
            used.update(over)
            images.append(
                ImageryRecord(
                    info=RasterInfo.of(src, path),
                    offsets=band_offsets(src, options.bands, options.offset),
                    labels=over,
                    rows=-(-src.height // options.patch),
                    cols=-(-src.width // options.patch),
                )
            )
    for j, (info, _, _) in enumerate(labels):
        if j not in used:
            raise DataError(info.path, "label raster does not overlap any imagery")
    return images, [info for info, _, _ in labels]


def prepare_dataset(
    imagery: Sequence[str | Path],
    labels: Sequence[str | Path],
    out: str | Path,
    options: PrepareOptions | None = None,
    progress: ProgressFn | None = None,
) -> PrepareSummary:
    """Cut imagery tiles and WorldCover labels into an ARAS400k-layout dataset under ``out``.

    Args:
        imagery: Sentinel-2 GeoTIFF tiles, or directories of them (``.tif``/``.tiff``).
        labels: ESA WorldCover GeoTIFF maps (band 1), or directories of them.
        out: Dataset root; new, empty, or an interrupted preparation of the same inputs and
            options (resumed without losing or repeating a patch).
        options: Patch size, bands, split, seed, block size, DN offset, water limit.
        progress: Optional ``progress(done, total)`` callback over windows.

    Returns:
        Counts written per split and dropped per reason, class pixels, and the inputs; the same
        is written to ``out/prepare.json``.

    Raises:
        DataError: On bad input (unreadable raster, imagery without CRS, too few bands, a label
            raster over no imagery, a non-empty ``out``), before anything is written; the
            message is one line naming the file.
    """
    options = options or PrepareOptions()
    image_paths = expand_inputs(imagery, "imagery")
    label_paths = expand_inputs(labels, "labels")
    root = Path(out)
    staging = root / STAGING
    plan = {
        "imagery": [str(p.resolve()) for p in image_paths],
        "labels": [str(p.resolve()) for p in label_paths],
        "options": json.loads(json.dumps(asdict(options))),
    }
    _check_out(root, staging, plan)
    records, label_infos = _inspect(image_paths, label_paths, options)
    summary = PrepareSummary(out=root, options=options, imagery=records, labels=label_infos)
    summary.windows = sum(r.rows * r.cols for r in records)
    for sub in ("images", "masks"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
        for stray in (staging / sub).glob(".*.tmp"):  # a write cut short by a kill
            stray.unlink()
    if not (staging / PLAN).is_file():
        write_json_atomic(staging / PLAN, plan)
    # GDAL's block cache defaults to 5 % of RAM and fills up as a scene is read; a fixed cap
    # keeps memory independent of the scene (unless the user set GDAL_CACHEMAX).
    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": GDAL_CACHE_MB}
    with rasterio.Env(**cache):  # on failure the staged patches stay for a resume
        blocks = cut_patches(records, label_paths, staging, summary, progress)
    _distribute(root, staging, blocks, summary)
    text = json.dumps(summary.to_dict(), indent=2) + "\n"
    write_bytes_atomic(summary.json_path, text.encode("utf-8"))
    for name in (JOURNAL, PLAN):
        (staging / name).unlink(missing_ok=True)
    for sub in ("images", "masks"):
        (staging / sub).rmdir()
    staging.rmdir()
    return summary


def _check_out(root: Path, staging: Path, plan: dict[str, object]) -> None:
    """``root`` must be new, empty, or an interrupted preparation of the same ``plan``."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return
    resumable = (
        root.is_dir()
        and (staging / PLAN).is_file()
        and not (root / "prepare.json").exists()
        and {p.name for p in root.iterdir()} <= {STAGING, *SPLITS}
    )
    if not resumable:
        raise DataError(root, "output exists and is not an empty directory")
    try:
        before = json.loads((staging / PLAN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    if before != plan:
        raise DataError(
            root,
            "holds an interrupted preparation of other inputs or options; rerun it with "
            "those to resume, or give a new or empty folder",
        )


def _distribute(
    root: Path, staging: Path, blocks: Mapping[BlockKey, PatchBlock], summary: PrepareSummary
) -> None:
    """Move the staged patches into their split's folders; fill the split counts."""
    options = summary.options
    ext = options.image_format
    for split in SPLITS:
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
    sizes = {key: len(b.names) for key, b in blocks.items()}
    for key, split in assign_splits(sizes, options.split, options.seed).items():
        for name in blocks[key].names:
            for sub, file in (("images", f"{name}.{ext}"), ("masks", f"{name}.png")):
                target = root / split / sub / file
                if (staging / sub / file).exists() or not target.exists():  # else moved before
                    os.replace(staging / sub / file, target)
        summary.written[split] += sizes[key]
        summary.class_pixels[split] += blocks[key].pixels
