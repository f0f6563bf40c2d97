"""Picture of a vectorised map: polygon outlines over the class map (``lale predict --vector``).

Usage (from the repository root, after ``lale predict … --vector gpkg --out maps/``)::

    .venv/bin/python benchmarks/vector_figure.py maps/NAME_classes.tif maps/NAME_classes.gpkg \
        docs/images/vector_map.png

The class map is drawn in its colour table (no-data white) in map coordinates, each polygon's
rings on top as thin black lines; the legend lists the classes present with their polygon counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyogrio.raw
import rasterio
import shapely
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch


def draw(classes_tif: Path, layer: Path, png: Path, title: str | None = None) -> None:
    """Draw ``layer``'s outlines over ``classes_tif`` into ``png``."""
    with rasterio.open(classes_tif) as src:
        classes = src.read(1)
        cmap = src.colormap(1)
        names = json.loads(src.tags()["classes"])
        left, bottom, right, top = src.bounds
        crs = src.crs.to_string()
    colours = np.array([cmap[i][:3] for i in range(256)], dtype=np.float64) / 255
    colours[255] = 1.0
    _, _, wkb, (cls, _, _) = pyogrio.raw.read(layer)
    geoms = shapely.from_wkb(wkb)
    rings = shapely.get_rings(geoms)
    lines = [np.asarray(shapely.get_coordinates(r)) for r in rings]
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    ax.imshow(
        classes,
        cmap=ListedColormap(colours),
        vmin=0,
        vmax=255,
        interpolation="nearest",
        extent=(left, right, bottom, top),
    )
    ax.add_collection(LineCollection(lines, colors="black", linewidths=0.5))
    counts = np.bincount(np.asarray(cls, dtype=np.int64), minlength=len(names))
    handles = [
        Patch(facecolor=colours[k], edgecolor="black", label=f"{names[k]} ({counts[k]})")
        for k in range(len(names))
        if counts[k]
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        title="class (polygons)",
        title_fontsize=8,
    )
    ax.set_title(title or f"{len(geoms)} polygons over {classes_tif.name}", fontsize=9)
    ax.set_xlabel(crs, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classes", type=Path)
    parser.add_argument("layer", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--title")
    args = parser.parse_args()
    draw(args.classes, args.layer, args.png, args.title)


if __name__ == "__main__":
    main()
