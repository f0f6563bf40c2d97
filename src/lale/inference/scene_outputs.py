"""Scene outputs by rows: the class map, confidence map and preview prediction writes.

:class:`SceneOutputs` receives finished rows of the class map (uint8, no-data 255) and,
optionally, of the confidence map (uint8 ``round(255 · max softmax)``, no-data 0 — the maximum
softmax is at least ``1/K``, so 0 never occurs in a valid pixel) and writes:

- for raster inputs, ``NAME_classes.tif`` (the input's CRS and transform, no-data 255, the
  schema's display colours as colour table, class names in the ``classes`` tag; 256² tiles,
  DEFLATE), ``NAME_confidence.tif`` and a palette ``NAME_preview.png`` subsampled to at most
  ``preview_size`` pixels a side;
- for PNG/JPEG inputs, ``NAME_classes.png`` (palette) and ``NAME_confidence.png`` (greyscale).

GeoTIFF rows are buffered and written in whole 256-row block bands, so no compressed block is
ever written twice. Every file, the area tables added with :meth:`SceneOutputs.add_file`
included, is written under a hidden temporary name, synced, and renamed into place only when all
of them are complete (:meth:`SceneOutputs.commit`); :meth:`SceneOutputs.abort` removes them. A
crash therefore leaves a scene's outputs all there or none under their final names.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window as RioWindow

from lale.atomic import staged_path
from lale.data.schema import ClassSchema
from lale.inference.scene import OUTPUT_BLOCK, PICTURE_SUFFIXES, PictureScene, Scene

__all__ = ["CLASS_NODATA", "CONFIDENCE_NODATA", "SceneOutputs", "planned_outputs"]

CLASS_NODATA = 255
"""Class-map value of no-data pixels."""
CONFIDENCE_NODATA = 0
"""Confidence-map value of no-data pixels."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _sync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def planned_outputs(
    path: Path, out_dir: Path, name: str, confidence: bool = False
) -> dict[str, Path]:
    """The files predicting ``path`` under base ``name`` writes into ``out_dir``, by kind."""
    if path.suffix.lower() in PICTURE_SUFFIXES:
        kinds = {"classes": "classes.png", "confidence": "confidence.png"}
    else:
        kinds = {"classes": "classes.tif", "preview": "preview.png"}
        kinds["confidence"] = "confidence.tif"
    if not confidence:
        del kinds["confidence"]
    kinds |= {"areas_csv": "areas.csv", "areas_json": "areas.json"}
    return {kind: out_dir / f"{name}_{suffix}" for kind, suffix in kinds.items()}


class _Bytes:
    """A file whose content is known at once: staged now, renamed on commit."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.tmp = path, staged_path(path)
        try:
            with open(self.tmp, "wb") as fh:
                fh.write(data)
        except BaseException:
            self.abort()
            raise

    def finish(self) -> None:
        _sync(self.tmp)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _palette(schema: ClassSchema) -> NDArray[np.uint8]:
    """256 × 3 palette: the display colours, black elsewhere (no-data shown transparent)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: schema.num_classes] = np.asarray(schema.display_colors, dtype=np.uint8)
    return pal


class _TiffRows:
    """A single-band uint8 GeoTIFF written in whole 256-row block bands."""

    def __init__(
        self,
        path: Path,
        scene: Scene,
        nodata: int,
        colors: NDArray[np.uint8] | None,
        tags: dict[str, str],
    ) -> None:
        self.path, self.tmp = path, _temporary(path)
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "height": scene.height,
            "width": scene.width,
            "count": 1,
            "dtype": "uint8",
            "crs": scene.crs,
            "transform": scene.transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": OUTPUT_BLOCK,
            "blockysize": OUTPUT_BLOCK,
            "compress": "deflate",
            "bigtiff": "if_safer",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.dst = rasterio.open(self.tmp, "w", **profile)
        try:
            if colors is not None:
                cmap = {i: (*map(int, colors[i]), 255) for i in range(256)}
                cmap[nodata] = (0, 0, 0, 0)
                self.dst.write_colormap(1, cmap)
            self.dst.update_tags(**tags)
        except BaseException:
            self.abort()
            raise
        self.pending: list[NDArray[np.uint8]] = []
        self.start = 0  # first scene row not yet written

    def write(self, row: int, rows: NDArray[np.uint8]) -> None:
        if row != self.start + sum(len(p) for p in self.pending):
            raise ValueError(f"rows must arrive in order; got row {row}")
        self.pending.append(rows)
        buffered = sum(len(p) for p in self.pending)
        if row + len(rows) == self.dst.height:
            self._flush(buffered)
        elif buffered >= OUTPUT_BLOCK:
            self._flush(buffered // OUTPUT_BLOCK * OUTPUT_BLOCK)

    def _flush(self, n: int) -> None:
        block = np.concatenate(self.pending)
        self.dst.write(block[:n], 1, window=RioWindow(0, self.start, block.shape[1], n))
        self.pending = [block[n:]] if n < len(block) else []
        self.start += n

    def finish(self) -> None:
        self.dst.close()
        _sync(self.tmp)

    def abort(self) -> None:
        self.dst.close()
        self.tmp.unlink(missing_ok=True)


class _PngRows:
    """A PNG collected in memory (every ``step``-th row and column), written on commit."""

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        palette: NDArray[np.uint8] | None,
        fill: int,
        max_side: int | None = None,
    ) -> None:
        self.path, self.tmp, self.palette = path, _temporary(path), palette
        self.step = 1 if max_side is None else max(1, math.ceil(max(height, width) / max_side))
        shape = (math.ceil(height / self.step), math.ceil(width / self.step))
        self.image = np.full(shape, fill, dtype=np.uint8)

    def write(self, row: int, rows: NDArray[np.uint8]) -> None:
        first = -row % self.step  # first row of the block on the subsampling grid
        kept = rows[first :: self.step, :: self.step]
        r0 = (row + first) // self.step
        self.image[r0 : r0 + len(kept)] = kept

    def finish(self) -> None:
        im = Image.fromarray(self.image)  # 2-D uint8: mode "L"
        if self.palette is not None:
            im = im.convert("P")
            im.putpalette(self.palette.ravel().tolist())
            im.save(self.tmp, format="PNG", transparency=CLASS_NODATA, optimize=False)
        else:
            im.save(self.tmp, format="PNG")
        _sync(self.tmp)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class SceneOutputs:
    """The files one scene's prediction produces; rows arrive top to bottom.

    Args:
        scene: The input (size, CRS, transform; raster or picture output formats).
        out_dir: Output folder (created if needed).
        name: Base name of the files (``NAME_classes.tif`` …).
        schema: Class names and display colours.
        confidence: Also write the confidence map.
        preview_size: Longest side of the raster preview PNG.
    """

    def __init__(
        self,
        scene: Scene,
        out_dir: Path,
        name: str,
        schema: ClassSchema,
        confidence: bool = False,
        preview_size: int = 2048,
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        pal = _palette(schema)
        h, w = scene.height, scene.width
        self.planned = planned_outputs(scene.path, out_dir, name, confidence)
        self.files: dict[str, _TiffRows | _PngRows | _Bytes] = {}
        self.confidence = confidence
        target = self.planned
        try:
            if isinstance(scene, PictureScene):
                self.files["classes"] = _PngRows(target["classes"], h, w, pal, CLASS_NODATA)
                if confidence:
                    self.files["confidence"] = _PngRows(
                        target["confidence"], h, w, None, CONFIDENCE_NODATA
                    )
                return
            tags = {"classes": json.dumps(list(schema.names)), "schema": schema.name}
            self.files["classes"] = _TiffRows(target["classes"], scene, CLASS_NODATA, pal, tags)
            self.files["preview"] = _PngRows(
                target["preview"], h, w, pal, CLASS_NODATA, preview_size
            )
            if confidence:
                tags = {"confidence": "round(255 * max softmax probability)"}
                self.files["confidence"] = _TiffRows(
                    target["confidence"], scene, CONFIDENCE_NODATA, None, tags
                )
        except BaseException:
            self.abort()
            raise

    def write(
        self, row: int, classes: NDArray[np.uint8], confidence: NDArray[np.uint8] | None = None
    ) -> None:
        """Write finished rows starting at scene ``row``."""
        for kind, sink in self.files.items():
            if isinstance(sink, _Bytes):
                continue
            if kind == "confidence":
                if confidence is None:
                    raise ValueError("confidence rows are needed for the confidence map")
                sink.write(row, confidence)
            else:
                sink.write(row, classes)

    def add_file(self, kind: str, data: bytes) -> None:
        """Stage a file of the planned ``kind`` (``areas_csv``, ``areas_json``) with ``data``."""
        self.files[kind] = _Bytes(self.planned[kind], data)

    def commit(self) -> dict[str, Path]:
        """Complete every file, then move them all into place; returns them by kind.

        If anything fails, the temporary files and the files already moved are removed.
        """
        moved: list[Path] = []
        try:
            for sink in self.files.values():
                sink.finish()
            for sink in self.files.values():
                os.replace(sink.tmp, sink.path)
                moved.append(sink.path)
        except BaseException:
            self.abort()
            for path in moved:
                path.unlink(missing_ok=True)
            raise
        return {kind: sink.path for kind, sink in self.files.items()}

    def abort(self) -> None:
        """Remove every temporary file."""
        for sink in self.files.values():
            sink.abort()
