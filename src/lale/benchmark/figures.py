"""The benchmark's figures: the efficiency frontier and per-class F1 bars.

Frontier: macro-F1 (mean ± std over seeds) against GMACs and against CPU throughput, marker
area proportional to parameters, the Pareto front (no other model both cheaper/faster and more
accurate) drawn as a step line, and the paper's published points where the model names match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from lale.atomic import atomic_path

__all__ = ["FAMILY_COLOURS", "pareto_front", "plot_curves", "plot_frontier", "plot_per_class_f1"]

FAMILY_COLOURS = {"lale": "tab:red", "baseline": "tab:blue", "frontier": "tab:green"}

Row = Mapping[str, Any]


def pareto_front(points: Sequence[tuple[float, float]], higher_x_better: bool) -> list[int]:
    """Indices of the points no other point beats in both x and y (y: higher is better)."""
    sign = 1.0 if higher_x_better else -1.0
    front = []
    for i, (x, y) in enumerate(points):
        beaten = any(
            sign * x2 >= sign * x and y2 >= y and (sign * x2 > sign * x or y2 > y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG under its final name only once complete (no pyplot state)."""
    canvas = FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        canvas.print_png(str(tmp))
    fig.clear()
    return path


def plot_frontier(
    rows: Sequence[Row], path: Path, published: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Two panels: macro-F1 vs GMACs and vs CPU images/s; Pareto front and paper points."""
    fig = Figure(figsize=(11, 4.2), dpi=110, layout="tight")
    axes = fig.subplots(1, 2)
    params = np.array([r["params"] for r in rows], dtype=float)
    sizes = 40 + 400 * params / max(params.max(), 1)
    for ax, key, label, higher in (
        (axes[0], "gmacs", "GMACs per image", False),
        (axes[1], "throughput", "CPU throughput (images/s)", True),
    ):
        pts = [(float(r[key]), float(r["macro_f1"]["mean"]) * 100) for r in rows]
        for r, (x, y), s in zip(rows, pts, sizes, strict=True):
            std = r["macro_f1"]["std"]
            colour = FAMILY_COLOURS.get(r["family"], "tab:grey")
            ax.errorbar(x, y, yerr=None if std is None else std * 100, fmt="none", c="grey")
            ax.scatter([x], [y], s=s, c=colour, alpha=0.7, edgecolors="k", zorder=3)
            ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        front = pareto_front(pts, higher)
        ax.step(
            [pts[i][0] for i in front],
            [pts[i][1] for i in front],
            where="pre" if higher else "post",
            c="tab:red",
            lw=1,
            ls="--",
            label="Pareto front",
        )
        for r in rows:
            paper = (published or {}).get(r["arch"], {})
            if paper.get(key) is not None and paper.get("macro_f1") is not None:
                ax.scatter([paper[key]], [paper["macro_f1"] * 100], marker="x", c="k", zorder=4)
        ax.set_xlabel(label)
        ax.set_ylabel("test macro-F1 (%)  mean ± std over seeds")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(
        "Efficiency frontier (red LALE, blue baselines, green frontier models; marker area ∝ "
        "parameters; × = the paper's figure)",
        fontsize=10,
    )
    return _save(fig, path)


def plot_per_class_f1(rows: Sequence[Row], path: Path) -> Path:
    """Grouped bars: per-class F1 (mean over seeds) of every model."""
    names = list(rows[0]["per_class_f1"])
    fig = Figure(figsize=(max(6.0, 1.2 * len(names) + 2), 4), dpi=110, layout="tight")
    ax = fig.subplots()
    width = 0.8 / len(rows)
    x = np.arange(len(names))
    for i, r in enumerate(rows):
        heights = [(r["per_class_f1"][n] or 0.0) * 100 for n in names]  # absent class: no bar
        ax.bar(x + i * width, heights, width, label=r["model"])
    ax.set_xticks(x + width * (len(rows) - 1) / 2, names, rotation=20, ha="right")
    ax.set_ylabel("test F1 (%)  mean over seeds")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_curves(rows: Sequence[Row], path: Path, protocol: str = "") -> Path:
    """Test macro-F1 (mean ± std over seeds) against steps, training GMACs and seconds.

    Training GMACs are the images seen × the row's ``train_gmacs_per_image``; rows without a
    budget curve are left out (the figure says so when none has one).
    """
    fig = Figure(figsize=(14, 4.2), dpi=110, layout="tight")
    axes = fig.subplots(1, 3)
    drawn = [r for r in rows if r.get("curve")]
    for i, r in enumerate(drawn):
        points = r["curve"]["points"]
        mean = np.array([p["test_f1"]["mean"] for p in points]) * 100
        std = np.array([p["test_f1"]["std"] or 0.0 for p in points]) * 100
        xs = (
            [p["step"] for p in points],
            [p["images"] * float(r.get("train_gmacs_per_image") or 0.0) for p in points],
            [p["train_seconds"] for p in points],
        )
        style = "-" if r["family"] == "lale" else "--" if r["family"] == "baseline" else ":"
        for ax, x in zip(axes, xs, strict=True):
            line = ax.plot(x, mean, style, marker="o", ms=3, label=r["model"], color=f"C{i % 10}")
            ax.fill_between(x, mean - std, mean + std, alpha=0.15, color=line[0].get_color())
    labels = ("optimizer steps", "training GMACs (images seen × 3 forward passes)", "seconds")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xscale("log", base=2 if ax is axes[0] else 10)
        if ax is axes[0]:
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel(label if ax is not axes[2] else "training seconds (scoring excluded)")
        ax.set_ylabel("test macro-F1 (%)")
        ax.grid(alpha=0.3, which="both")
    if drawn:
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no budget curves", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"Accuracy against budget (mean ± std over seeds; {protocol})", fontsize=10)
    return _save(fig, path)
