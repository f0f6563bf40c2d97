"""Figures of a run: confusion matrix, per-class scores, sample predictions, training history.

Every figure is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas — pyplot and
its global state are never touched — so figures can be made from any thread or worker process.
Each ``plot_*`` function creates the parent directories, writes one PNG and returns its path.
The score figures read :func:`lale.training.metrics.scores_from_confusion` output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from PIL import Image

from lale.data.schema import ClassSchema, ImageSpec
from lale.formatting import percent

__all__ = ["display_image", "plot_confusion", "plot_history", "plot_per_class", "plot_samples"]

DPI = 100
"""Resolution of every PNG written here."""
IGNORE_COLOR = (0, 0, 0)
"""Colour of ``ignore_index`` pixels in sample masks."""
_F1_COLOR, _IOU_COLOR = "#1f77b4", "#ff7f0e"
Row = Mapping[str, float | None]  # one epoch of training history
_PANEL = 2.0  # inches per sample panel: ~190 px after padding, keeps 8 samples < 1 MB


def _figure(width: float, height: float, pad: float = 0.04) -> Figure:
    layout = ConstrainedLayoutEngine(w_pad=pad, h_pad=pad, wspace=pad / 2, hspace=pad / 2)
    return Figure(figsize=(width, height), dpi=DPI, facecolor="white", layout=layout)


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as an RGB PNG (no alpha: ~15 % smaller), parents created; free its artists."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = FigureCanvasAgg(fig)  # Agg without pyplot: no global figure registry
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    Image.fromarray(np.ascontiguousarray(rgb)).save(out, format="PNG", dpi=(DPI, DPI))
    fig.clear()
    return out


_pct = functools.partial(percent, unit=" %")


def _count(n: int) -> str:
    """Compact pixel count: 950, 12.3k, 4.5M, 1.2G."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def plot_confusion(scores: Mapping[str, Any], path: str | Path) -> Path:
    """Heat map of the row-normalised confusion matrix (percent of each true class).

    Cells show the percentage and the pixel count; classes without truth pixels get a row of
    zeros. The title gives the overall accuracy (OA) and the macro F1.

    Args:
        scores: Output of :func:`~lale.training.metrics.scores_from_confusion`.
        path: PNG to write.
    """
    names = list(scores["per_class"])
    n = len(names)
    cm = np.asarray(scores["confusion_matrix"], dtype=np.int64).reshape(n, n)
    support = cm.sum(axis=1)
    pct = 100.0 * cm / np.maximum(support, 1)[:, None]  # a row without support stays all zero
    side = max(4.5, 0.78 * n + 2.6)
    fig = _figure(side + 0.8, side, pad=0.08)
    ax = fig.add_subplot()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of true class")
    size = 10 if n <= 8 else 8.5
    center: dict[str, Any] = {"ha": "center", "va": "center"}
    for (i, j), count in np.ndenumerate(cm):
        if count == 0:
            ax.text(j, i, "0", color="#aaaaaa", fontsize=size - 1, **center)
            continue
        color = "white" if pct[i, j] > 55 else "#222222"
        weight = "bold" if i == j else "normal"
        ax.text(j, i - 0.1, f"{pct[i, j]:.1f}", color=color, fontsize=size, weight=weight, **center)
        ax.text(j, i + 0.25, _count(int(count)), color=color, fontsize=size - 2.5, **center)
    ax.set_xticks(range(n), names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), [f"{m}\n({_count(int(support[i]))})" for i, m in enumerate(names)])
    ax.tick_params(axis="y", labelsize=8)
    ax.set(xlabel="predicted class", ylabel="true class (pixels)")
    ax.set_title(
        f"Confusion matrix, % of each true class\n"
        f"OA {_pct(scores['accuracy'])} · macro-F1 {_pct(scores['macro']['f1'])}"
    )
    return _save(fig, path)


def plot_per_class(scores: Mapping[str, Any], path: str | Path) -> Path:
    """Horizontal bars of per-class F1 and IoU (percent), the macro means as dashed lines.

    Classes without a score (absent from truth and prediction) are marked "n/a".

    Args:
        scores: Output of :func:`~lale.training.metrics.scores_from_confusion`.
        path: PNG to write.
    """
    per_class: Mapping[str, Mapping[str, Any]] = scores["per_class"]
    names = list(per_class)
    n = len(names)
    fig = _figure(7.5, max(3.2, 0.55 * n + 1.6), pad=0.08)
    ax = fig.add_subplot()
    y, h = np.arange(n), 0.38
    series = (("f1", "F1", _F1_COLOR, -h / 2), ("iou", "IoU", _IOU_COLOR, h / 2))
    handles: list[Any] = []  # legend order: bars, then the macro lines
    for key, label, color, dy in series:
        values = [per_class[m][key] for m in names]
        widths = [0.0 if v is None else 100 * v for v in values]
        handles.append(ax.barh(y + dy, widths, height=h, color=color, label=label))
        texts = [f"{w:.1f}" if v is not None else "" for v, w in zip(values, widths, strict=True)]
        ax.bar_label(handles[-1], texts, padding=2, fontsize=7)
    for key, label, color, _ in series:
        if (macro := scores["macro"][key]) is not None:
            text = f"macro {label} {_pct(macro)}"
            handles.append(ax.axvline(100 * macro, color=color, ls="--", lw=1.2, label=text))
    for i, m in enumerate(names):
        if per_class[m]["f1"] is None:
            ax.text(1, i, "n/a (not in truth or prediction)", va="center", fontsize=8, color="#777")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 109), xlabel="score (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    averaged = f"macro over {len(scores.get('classes_averaged', names))} of {n} classes"
    ax.set_title(f"Per-class scores · OA {_pct(scores['accuracy'])} · {averaged}")
    return _save(fig, path)


def _colorize(labels: NDArray[Any], schema: ClassSchema) -> NDArray[np.uint8]:
    labels = np.asarray(labels)
    bad = ((labels >= schema.num_classes) & (labels != schema.ignore_index)) | (labels < 0)
    if labels.ndim != 2 or bad.any():
        raise ValueError(
            f"labels must be H×W class indices or {schema.ignore_index} (ignore); got shape "
            f"{labels.shape}, unknown values {np.unique(labels[bad])[:10].tolist()}"
        )
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: schema.num_classes] = schema.display_colors
    lut[schema.ignore_index] = IGNORE_COLOR
    return lut[labels.astype(np.intp)]


def plot_samples(
    samples: Sequence[tuple[NDArray[np.uint8], NDArray[Any], NDArray[Any]]],
    schema: ClassSchema,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """A grid with one row per sample: image | truth | prediction, and a legend of classes.

    Args:
        samples: ``(image, truth, prediction)`` triples: an ``H×W×3`` uint8 display image (see
            :func:`display_image`) and ``H×W`` label maps (class indices; ``ignore_index``
            pixels of the truth are drawn black).
        schema: Gives the class names, display colours and ignore label.
        path: PNG to write.
        title: Optional figure title.

    Raises:
        ValueError: No samples, mismatched shapes or labels that are neither a class nor ignore.
    """
    if not (rows := len(samples)):
        raise ValueError("no samples to plot")
    legend = 0.2 * math.ceil((schema.num_classes + 1) / 4)  # four legend entries per line
    fig = _figure(3 * _PANEL + 0.3, (_PANEL + 0.3) * rows + legend + 0.4 * bool(title), pad=0.03)
    axes = fig.subplots(rows, 3, squeeze=False)
    for r, (image, truth, pred) in enumerate(samples):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != np.shape(truth):
            raise ValueError(f"sample {r}: image {image.shape} must be H×W×3 like its masks")
        if np.shape(pred) != np.shape(truth):
            raise ValueError(f"sample {r}: prediction {np.shape(pred)} ≠ truth {np.shape(truth)}")
        truth, pred = np.asarray(truth), np.asarray(pred)
        valid = truth != schema.ignore_index
        correct = f"{100 * float((pred == truth)[valid].mean()):.1f} %" if valid.any() else "n/a"
        panels = (image, _colorize(truth, schema), _colorize(pred, schema))
        heads = ("image", "truth", f"prediction ({correct} correct)")
        for c, (ax, panel, head) in enumerate(zip(axes[r], panels, heads, strict=True)):
            ax.imshow(panel, interpolation="antialiased" if c == 0 else "nearest")
            ax.set(xticks=[], yticks=[])
            ax.set_title(head if r == 0 or c == 2 else "", fontsize=9)
    entries = [*zip(schema.names, schema.display_colors, strict=True), ("ignore", IGNORE_COLOR)]
    handles = [
        Patch(facecolor="#{:02x}{:02x}{:02x}".format(*c), edgecolor="#555555", label=name)
        for name, c in entries
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _series(rows: Sequence[Row], key: str) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of the rows where ``key`` has a finite value."""
    xs: list[float] = []
    ys: list[float] = []
    for i, row in enumerate(rows):
        if (v := row.get(key)) is not None and math.isfinite(v):
            xs.append(float(i if (x := row.get("epoch")) is None else x))
            ys.append(float(v))
    return xs, ys


def plot_history(rows: Sequence[Row], path: str | Path, metric: str = "val/macro_f1") -> Path:
    """Training curves: the losses (and learning rate), and ``metric`` with its best epoch.

    Args:
        rows: One mapping per epoch, e.g. ``{"epoch": 3, "train/loss": 0.41, "val/loss": 0.47,
            "val/macro_f1": 0.62, "lr": 1e-3}``; missing or ``None`` values are skipped. Every
            key containing ``"loss"`` is drawn in the first panel; ``"lr"`` on a log-scale
            twin axis.
        path: PNG to write.
        metric: Score (a fraction) drawn in percent in the second panel; its maximum is marked.
    """
    if not rows:
        raise ValueError("no history rows to plot")
    fig = _figure(10, 3.8, pad=0.08)
    ax_loss, ax_score = fig.subplots(1, 2, sharex=True)
    marker = "o" if len(rows) < 30 else None
    for key in dict.fromkeys(k for row in rows for k in row if "loss" in k):
        xs, ys = _series(rows, key)
        if xs:
            ax_loss.plot(xs, ys, marker=marker, ms=3, label=key)
    top = ax_loss
    lr_x, lr_y = _series(rows, "lr")
    if lr_x and all(v > 0 for v in lr_y):
        top = ax_loss.twinx()
        top.plot(lr_x, lr_y, color="#999999", lw=1, ls=":", label="lr (right axis)")
        top.set_yscale("log")
        top.set_ylabel("learning rate", color="#777777", fontsize=8)
        top.tick_params(axis="y", which="both", labelsize=7, colors="#777777")
    ax_loss.set_title("Loss")
    if lines := list(ax_loss.get_lines()) + (list(top.get_lines()) if top is not ax_loss else []):
        top.legend(handles=lines, fontsize=8)  # on the twin axis, so the lr curve stays below
    xs, ys = _series(rows, metric)
    if xs:
        pct = [100 * v for v in ys]
        ax_score.plot(xs, pct, marker=marker, ms=3, color=_F1_COLOR, label=metric)
        best = int(np.argmax(pct))
        text = f"best {pct[best]:.2f} % @ epoch {xs[best]:g}"
        ax_score.axvline(xs[best], color="#2ca02c", ls="--", lw=1)
        ax_score.plot(xs[best], pct[best], "*", ms=14, color="#2ca02c", label=text)
        ax_score.legend(fontsize=8, loc="lower right")
    else:
        ax_score.text(0.5, 0.5, f"no {metric} values", transform=ax_score.transAxes, ha="center")
    ax_score.set_title(f"{metric} (%)")
    ax_score.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_loss, ax_score):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def display_image(image: NDArray[Any], spec: ImageSpec) -> NDArray[np.uint8]:
    """An ``H×W×3`` uint8 picture of raw image samples, for figures.

    Takes the first three channels (with fewer, the first in grey), scales them as
    ``(raw + offset) / scale`` and stretches the 2–98 % percentiles of the whole image to
    0..255. Plain 8-bit RGB (uint8 with ``scale`` 255, ``offset`` 0) is shown as it is.
    Non-finite samples (e.g. NaN no-data) become black.

    Args:
        image: ``C×H×W`` raw samples of any numeric type, bands as fed to the model.
        spec: The image format (``scale`` and ``offset``).
    """
    x = np.asarray(image)
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValueError(f"image must be C×H×W, got shape {x.shape}")
    x = x[:3] if x.shape[0] >= 3 else np.repeat(x[:1], 3, axis=0)
    if x.dtype == np.uint8 and spec.scale == 255 and spec.offset == 0:
        return np.ascontiguousarray(x.transpose(1, 2, 0))
    scaled = (x.astype(np.float32) + spec.offset) / spec.scale
    finite = np.isfinite(scaled)
    if not finite.any():
        return np.zeros((*x.shape[1:], 3), dtype=np.uint8)
    lo, hi = np.percentile(scaled[finite], [2, 98])
    span = float(hi - lo) if hi > lo else 1.0
    out = np.clip((np.where(finite, scaled, lo) - lo) / span * 255, 0, 255)
    return np.ascontiguousarray(out.round().astype(np.uint8).transpose(1, 2, 0))
