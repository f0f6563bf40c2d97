"""Scene outputs by rows: the class map, confidence, probabilities, polygons and preview writes.

:class:`SceneOutputs` receives finished rows of the class map (uint8, no-data 255) and,
optionally, of the confidence map (uint8 ``round(255 · max softmax)``, no-data 0 — the maximum
softmax is at least ``1/K``, so 0 never occurs in a valid pixel) and of the per-class
probabilities (:mod:`lale.inference.row_products`), and writes:

- for raster inputs, Cloud-Optimized GeoTIFFs (:mod:`lale.inference.cog`; the input's CRS and
  transform): ``NAME_classes.tif`` (no-data 255, the schema's display colours as colour table,
  class names in the ``classes`` tag, overviews by mode), ``NAME_confidence.tif`` and
  ``NAME_probabilities.tif`` (one band per class described by its name, band scale 1/255,
  no-data as a mask; overviews by average), a palette ``NAME_preview.png`` subsampled to at
  most ``preview_size`` pixels a side, and, if asked, the polygons ``NAME_classes.gpkg`` or
  ``.geojson`` (:mod:`lale.inference.vectorize`, traced from the written class map);
- for PNG/JPEG inputs, ``NAME_classes.png`` (palette), ``NAME_confidence.png`` (greyscale) and
  ``NAME_probabilities.tif`` (the same COG, without georeference); polygons need a CRS and are
  refused for them.

Every file, the area tables added with :meth:`SceneOutputs.add_file` included, is written under
a hidden temporary name, synced, and renamed into place only when all of them are complete
(:meth:`SceneOutputs.commit`); :meth:`SceneOutputs.abort` removes them. A crash or a failed
conversion or vectorisation therefore leaves a scene's outputs all there or none under their
final names.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from lale.atomic import staged_path
from lale.data.schema import ClassSchema
from lale.errors import DataError
from lale.inference.cog import CogRows
from lale.inference.row_products import PROBABILITY_SCALE
from lale.inference.scene import PICTURE_SUFFIXES, PictureScene, Scene
from lale.inference.vector_options import VectorOptions

if TYPE_CHECKING:
    from lale.data.io.remote import RemoteRaster
    from lale.inference.inputs import StacInput

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
    path: Path | RemoteRaster | StacInput,
    out_dir: Path,
    name: str,
    confidence: bool = False,
    *,
    probabilities: bool = False,
    vector: VectorOptions | None = None,
) -> dict[str, Path]:
    """The files predicting ``path`` under base ``name`` writes into ``out_dir``, by kind.

    ``probabilities`` implies the confidence map.
    """
    picture = isinstance(path, Path) and path.suffix.lower() in PICTURE_SUFFIXES
    ext = "png" if picture else "tif"
    kinds = {"classes": f"classes.{ext}"}
    if not picture:
        kinds["preview"] = "preview.png"
    if confidence or probabilities:
        kinds["confidence"] = f"confidence.{ext}"
    if probabilities:
        kinds["probabilities"] = "probabilities.tif"
    if vector is not None:
        kinds["vector"] = vector.suffix
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


class _Polygons:
    """The class map's polygons, traced from the finished class map when the scene commits."""

    def __init__(
        self, path: Path, classes: CogRows, names: tuple[str, ...], options: VectorOptions
    ) -> None:
        self.path, self.classes, self.names, self.options = path, classes, names, options
        self.tmp = staged_path(path)

    def finish(self) -> None:
        from lale.inference.vectorize import vectorize_class_map

        vectorize_class_map(self.classes.tmp, self.tmp, self.names, self.options)
        _sync(self.tmp)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


_Sink = CogRows | _PngRows | _Bytes | _Polygons


class SceneOutputs:
    """The files one scene's prediction produces; rows arrive top to bottom.

    Args:
        scene: The input (size, CRS, transform; raster or picture output formats).
        out_dir: Output folder (created if needed).
        name: Base name of the files (``NAME_classes.tif`` …).
        schema: Class names and display colours.
        confidence: Also write the confidence map.
        preview_size: Longest side of the raster preview PNG.
        probabilities: Also write the per-class probabilities (and the confidence map).
        vector: Also write the polygons of the class map.

    Raises:
        DataError: Polygons are asked of an input without CRS.
    """

    def __init__(
        self,
        scene: Scene,
        out_dir: Path,
        name: str,
        schema: ClassSchema,
        confidence: bool = False,
        preview_size: int = 2048,
        *,
        probabilities: bool = False,
        vector: VectorOptions | None = None,
    ) -> None:
        if vector is not None and (isinstance(scene, PictureScene) or scene.crs is None):
            raise DataError(
                scene.path, "has no CRS; --vector needs a georeferenced raster (GeoTIFF)"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        pal = _palette(schema)
        h, w = scene.height, scene.width
        confidence = confidence or probabilities
        self.planned = planned_outputs(
            scene.path, out_dir, name, confidence, probabilities=probabilities, vector=vector
        )
        self.files: dict[str, _Sink] = {}
        target = self.planned
        try:
            if isinstance(scene, PictureScene):
                self.files["classes"] = _PngRows(target["classes"], h, w, pal, CLASS_NODATA)
                if confidence:
                    self.files["confidence"] = _PngRows(
                        target["confidence"], h, w, None, CONFIDENCE_NODATA
                    )
            else:
                tags = {
                    **scene.tags,
                    "classes": json.dumps(list(schema.names)),
                    "schema": schema.name,
                }
                classes = CogRows(
                    target["classes"], scene, 1, "mode", CLASS_NODATA, pal, tags, ("class",)
                )
                self.files["classes"] = classes
                self.files["preview"] = _PngRows(
                    target["preview"], h, w, pal, CLASS_NODATA, preview_size
                )
                if confidence:
                    tags = {"confidence": "round(255 * max softmax probability)"}
                    self.files["confidence"] = CogRows(
                        target["confidence"],
                        scene,
                        1,
                        "average",
                        CONFIDENCE_NODATA,
                        None,
                        tags,
                        ("confidence",),
                        PROBABILITY_SCALE,
                    )
                if vector is not None:
                    self.files["vector"] = _Polygons(
                        target["vector"], classes, tuple(schema.names), vector
                    )
            if probabilities:
                tags = {
                    "probabilities": "round(255 * softmax probability), one band per class",
                    "scale": "1/255",
                    "classes": json.dumps(list(schema.names)),
                }
                self.files["probabilities"] = CogRows(
                    target["probabilities"],
                    scene,
                    schema.num_classes,
                    "average",
                    None,
                    None,
                    tags,
                    tuple(schema.names),
                    PROBABILITY_SCALE,
                )
        except BaseException:
            self.abort()
            raise

    def write(
        self,
        row: int,
        classes: NDArray[np.uint8],
        confidence: NDArray[np.uint8] | None = None,
        probabilities: NDArray[np.uint8] | None = None,
    ) -> None:
        """Write finished rows starting at scene ``row``."""
        for kind, sink in self.files.items():
            if isinstance(sink, _Bytes | _Polygons):
                continue
            if kind == "confidence":
                if confidence is None:
                    raise ValueError("confidence rows are needed for the confidence map")
                sink.write(row, confidence)
            elif kind == "probabilities":
                if probabilities is None:
                    raise ValueError("probability rows are needed for the probabilities")
                assert isinstance(sink, CogRows)
                sink.write(row, probabilities, classes != CLASS_NODATA)
            else:
                sink.write(row, classes)

    def add_file(self, kind: str, data: bytes) -> None:
        """Stage a file of the planned ``kind`` (``areas_csv``, ``areas_json``) with ``data``."""
        self.files[kind] = _Bytes(self.planned[kind], data)

    def commit(self) -> dict[str, Path]:
        """Complete every file (the polygons after the class map), then move them all into place.

        Returns the files by kind. If anything fails, the temporary files and the files already
        moved are removed.
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
