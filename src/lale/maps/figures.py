"""Pictures of map products: class area bars, zone stacked bars, transition heat-map, legend.

Every figure uses the map's display colours (its colour table) and is saved as PNG to the path
given (a staged path: see :mod:`lale.maps.staging`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["area_bars", "change_heatmap", "change_legend", "zone_bars"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rgb(colours: NDArray[np.uint8]) -> list[tuple[float, ...]]:
    return [tuple(float(v) / 255 for v in c) for c in colours]


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)


def area_bars(
    path: Path,
    names: Sequence[str],
    values: Sequence[float],
    colours: NDArray[np.uint8],
    unit: str,
    title: str,
) -> None:
    """Horizontal bars of each class's area (``unit``), with its share of the total."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y, values, color=_rgb(colours), edgecolor="0.3", linewidth=0.5)
    ax.set_yticks(y, labels=list(names))
    ax.invert_yaxis()
    total = float(sum(values))
    for i, v in enumerate(values):
        share = f"{100 * v / total:.1f} %" if total > 0 else ""
        ax.annotate(f" {v:,.3f} ({share})", (v, i), va="center", fontsize=8)
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.25)
    _save(fig, path)


def zone_bars(
    path: Path,
    zones: Sequence[str],
    values: NDArray[np.float64],
    names: Sequence[str],
    colours: NDArray[np.uint8],
    unit: str,
    title: str,
    top: int = 20,
) -> None:
    """One stacked bar per zone (``values``: zones × classes), the ``top`` largest zones."""
    plt = _pyplot()
    order = np.argsort(-values.sum(axis=1), kind="stable")[:top]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(order) + 1.8))
    y = np.arange(len(order))
    left = np.zeros(len(order))
    for k, (name, colour) in enumerate(zip(names, _rgb(colours), strict=True)):
        width = values[order, k]
        ax.barh(y, width, left=left, color=colour, label=name, edgecolor="0.3", linewidth=0.3)
        left += width
    ax.set_yticks(y, labels=[zones[i] for i in order])
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    shown = f"{len(order)} largest of {len(zones)} zones" if len(zones) > top else "zones"
    ax.set_title(f"{title} ({shown})", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    _save(fig, path)


def change_heatmap(
    path: Path, matrix: NDArray[np.float64], names: Sequence[str], unit: str, title: str
) -> None:
    """Transition heat-map: colour and second line = share of the row (class in A), first
    line = area in ``unit``."""
    plt = _pyplot()
    k = len(names)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    side = 0.75 * k + 2.5
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(100 * share, cmap="viridis", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            light = share[i, j] < 0.6
            ax.text(
                j, i, f"{matrix[i, j]:.3g}\n{100 * share[i, j]:.0f} %", ha="center",
                va="center", fontsize=7, color="white" if light else "black",
            )  # fmt: skip
    ax.set_xticks(range(k), labels=list(names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(names))
    ax.set_xlabel("to (map B)")
    ax.set_ylabel("from (map A)")
    ax.set_title(f"{title}\ncells: {unit}, % of the row", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the class in A")
    _save(fig, path)


def change_legend(
    path: Path,
    matrix: NDArray[np.float64],
    names: Sequence[str],
    code_colours: NDArray[np.uint8],
    unit: str,
    most: int = 40,
) -> None:
    """Legend of the change raster: the transitions present, largest first (at most ``most``)."""
    plt = _pyplot()
    k = len(names)
    pairs = [(matrix[i, j], i, j) for i in range(k) for j in range(k) if matrix[i, j] > 0]
    pairs.sort(key=lambda p: -p[0])
    left_out = len(pairs) - most
    pairs = pairs[:most]
    fig, ax = plt.subplots(figsize=(5.5, 0.28 * max(len(pairs), 1) + 1.0))
    ax.set_xlim(0, 10)
    ax.set_ylim(len(pairs) + 0.5, -0.8)
    ax.axis("off")
    ax.text(0, -0.5, "change raster: code = from × K + to", fontsize=9, weight="bold")
    for row, (area, i, j) in enumerate(pairs):
        colour = tuple(float(v) / 255 for v in code_colours[i * k + j])
        ax.add_patch(plt.Rectangle((0, row + 0.1), 0.6, 0.8, color=colour, ec="0.3", lw=0.5))
        what = f"{names[i]} (unchanged)" if i == j else f"{names[i]} → {names[j]}"
        ax.text(0.8, row + 0.5, f"{i * k + j}: {what}  {area:,.4g} {unit}", va="center", fontsize=8)
    if left_out > 0:
        ax.text(0.8, len(pairs) + 0.4, f"… and {left_out} smaller transitions", fontsize=8)
    _save(fig, path)
