"""Sliding-window geometry and logit accumulation, as mmsegmentation's ``slide_inference``.

Windows of ``tile`` pixels at stride ``tile − overlap``, the last one shifted back inside the image;
overlapping logits are blended with a ``"uniform"`` or raised-cosine ``"smooth"`` weight.
:class:`StripAccumulator` holds only the open rows, so memory never grows with the scene's height.
All numpy: the backend is the only part that may use PyTorch (or onnxruntime).
The algorithm: docs/design.md#tiling and docs/design.md#blending.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from lale.inference.pad import pad_bottom_right

__all__ = [
    "Blend",
    "SlideStats",
    "StripAccumulator",
    "TileGrid",
    "Window",
    "blend_weights",
    "slide_inference",
    "window_count",
    "window_starts",
]

Blend = Literal["uniform", "smooth"]
"""How overlapping windows are weighted: equally, or with a smooth ramp near window edges."""

Window = tuple[int, int, int, int]
"""``(row, col, height, width)`` of a rectangle inside the scene."""

Floats = NDArray[np.float32]


def window_count(size: int, tile: int, stride: int) -> int:
    """Windows along an axis of ``size`` pixels: ``ceil((size − tile) / stride) + 1`` (≥ 1)."""
    if size < 1 or tile < 1 or stride < 1:
        raise ValueError(f"size, tile and stride must be positive, got {size}, {tile}, {stride}")
    return max(math.ceil((size - tile) / stride), 0) + 1


def window_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start of each window along an axis; the last is shifted back to end at ``size``."""
    last = max(size - tile, 0)
    return [min(i * stride, last) for i in range(window_count(size, tile, stride))]


@dataclass(frozen=True)
class TileGrid:
    """The sliding windows over a ``height × width`` scene.

    Attributes:
        height: Scene rows.
        width: Scene columns.
        tile: Window side (the model's input size).
        overlap: Pixels shared by neighbouring windows (``0 ≤ overlap < tile``).
    """

    height: int
    width: int
    tile: int = 256
    overlap: int = 64
    row_starts: tuple[int, ...] = field(init=False, repr=False)
    col_starts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"empty scene {self.height}×{self.width}")
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise ValueError(
                f"need tile >= 1 and 0 <= overlap < tile, got {self.tile}, {self.overlap}"
            )
        rows = window_starts(self.height, self.tile, self.stride)
        cols = window_starts(self.width, self.tile, self.stride)
        object.__setattr__(self, "row_starts", tuple(rows))
        object.__setattr__(self, "col_starts", tuple(cols))

    @property
    def stride(self) -> int:
        """Step between window starts, ``tile − overlap``."""
        return self.tile - self.overlap

    @property
    def tile_height(self) -> int:
        """Rows of every window (the tile, or the scene height if that is smaller)."""
        return min(self.tile, self.height)

    @property
    def tile_width(self) -> int:
        """Columns of every window (the tile, or the scene width if that is smaller)."""
        return min(self.tile, self.width)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def windows(self) -> Iterator[Window]:
        """Every window, row band by row band, left to right."""
        for r in self.row_starts:
            for c in self.col_starts:
                yield (r, c, self.tile_height, self.tile_width)

    def finished_rows(self, band: int) -> int:
        """Rows final once row band ``band`` is done: up to the next band's start (or the end)."""
        starts = self.row_starts
        return starts[band + 1] if band + 1 < len(starts) else self.height


def _ramp(n: int, overlap: int) -> NDArray[np.float32]:
    """1-D weight: ``sin²`` rising over ``overlap`` pixels from each end, 1 in between, > 0."""
    d = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float64)  # distance to an edge
    w = np.sin(0.5 * np.pi * (d + 1) / (overlap + 1)) ** 2
    return np.where(d < overlap, w, 1.0).astype(np.float32)


def blend_weights(height: int, width: int, blend: Blend = "smooth", overlap: int = 0) -> Floats:
    """Per-pixel weight of one ``height × width`` window (float32, all values > 0).

    Args:
        height: Window rows.
        width: Window columns.
        blend: ``"uniform"`` (all ones) or ``"smooth"`` (raised-cosine ramp near the edges).
        overlap: Ramp length in pixels for ``"smooth"`` (the windows' overlap).
    """
    if blend == "uniform" or overlap <= 0:
        return np.ones((height, width), dtype=np.float32)
    if blend != "smooth":
        raise ValueError(f"blend must be 'uniform' or 'smooth', got {blend!r}")
    rows, cols = _ramp(height, overlap), _ramp(width, overlap)
    return np.outer(rows, cols)


class StripAccumulator:
    """Weighted logit sums and validity for the open rows ``[top, top + rows)`` of a scene.

    Args:
        num_classes: Logit channels.
        rows: Rows kept open (the window height is enough: a band's windows all start on one row).
        width: Scene columns.

    Attributes:
        top: Scene row held in buffer row 0.
        logits: ``num_classes × rows × width`` float32 weighted sums.
        weight: ``rows × width`` float32 sums of weights.
        valid: ``rows × width`` bool, whether the input pixel holds data.
    """

    def __init__(self, num_classes: int, rows: int, width: int) -> None:
        self.top = 0
        self.logits = np.zeros((num_classes, rows, width), dtype=np.float32)
        self.weight = np.zeros((rows, width), dtype=np.float32)
        self.valid = np.zeros((rows, width), dtype=bool)
        self._product: Floats | None = None  # scratch for one window's weighted logits

    @property
    def rows(self) -> int:
        """Rows held open."""
        return self.weight.shape[0]

    def _rows(self, row: int, height: int) -> slice:
        r = row - self.top
        if r < 0 or r + height > self.rows:
            raise ValueError(
                f"rows {row}..{row + height} outside the open strip "
                f"{self.top}..{self.top + self.rows}"
            )
        return slice(r, r + height)

    def add(self, logits: Floats, weight: Floats, row: int, col: int) -> None:
        """Add one window's ``K × h × w`` logits, weighted by ``weight`` (``h × w``)."""
        h, w = weight.shape
        rs, cs = self._rows(row, h), slice(col, col + w)
        if self._product is None or self._product.shape[1:] != (h, w):
            self._product = np.empty((self.logits.shape[0], h, w), dtype=np.float32)
        product = np.multiply(logits, weight, out=self._product)
        self.logits[:, rs, cs] += product
        self.weight[rs, cs] += weight

    def set_valid(self, valid: NDArray[np.bool_], row: int, col: int) -> None:
        """Record the validity of an ``h × w`` block of input pixels."""
        h, w = valid.shape
        self.valid[self._rows(row, h), col : col + w] = valid

    def pop(self, until: int) -> tuple[int, Floats, NDArray[np.bool_]]:
        """Hand out the finished rows ``[top, until)`` and open as many new (zero) rows.

        Returns:
            ``(first row, mean logits K × n × width, validity n × width)``. Pixels no window
            added to (only possible where no input is valid) get zero logits.
        """
        n = until - self.top
        if not 0 < n <= self.rows:
            raise ValueError(f"cannot finish rows {self.top}..{until} of a {self.rows}-row strip")
        top = self.top
        mean = self.logits[:, :n] / np.maximum(self.weight[:n], np.finfo(np.float32).tiny)
        valid = self.valid[:n].copy()
        for buf in (self.logits, self.weight):
            buf[..., : self.rows - n, :] = buf[..., n:, :]  # numpy copies overlapping views safely
            buf[..., self.rows - n :, :] = 0
        self.valid[: self.rows - n] = self.valid[n:].copy()
        self.valid[self.rows - n :] = False
        self.top = until
        return top, mean, valid


@dataclass
class SlideStats:
    """Counts of one sliding-window pass (filled in as it runs)."""

    windows: int = 0
    run: int = 0


def slide_inference(
    read: Callable[[Window], tuple[NDArray[Any], NDArray[np.bool_]]],
    prepare: Callable[[NDArray[Any], NDArray[np.bool_]], Floats],
    backend: Callable[[Floats], NDArray[Any]],
    grid: TileGrid,
    num_classes: int,
    *,
    blend: Blend = "smooth",
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    stats: SlideStats | None = None,
) -> Iterator[tuple[int, Floats, NDArray[np.bool_]]]:
    """Yield ``(first row, mean logits K×n×W, valid n×W)`` strips of a scene, top to bottom.

    Each batch of neighbouring windows of a row band is read as one window; windows without a
    valid pixel are skipped (their pixels are all no-data). After each row band its finished
    rows are yielded; the accumulator holds one window height of rows.

    Args:
        read: Raw samples (``C×h×w``) and validity (``h×w``) of a ``(row, col, h, w)`` window.
        prepare: Normalised ``C×h×w`` float32 model input of one window of ``read``'s output.
        backend: ``B×C×tile×tile`` float32 input to ``B×K×tile×tile`` logits (numpy arrays).
        grid: The windows.
        num_classes: Logit channels ``K``.
        blend: Weighting of overlapping windows.
        batch_size: Windows per backend call.
        progress: Called with ``(windows done, windows in total)`` after each batch.
        stats: Filled with the windows done and run, if given.
    """
    th, tw, tile = grid.tile_height, grid.tile_width, grid.tile
    weight = blend_weights(th, tw, blend, grid.overlap)
    acc = StripAccumulator(num_classes, th, grid.width)
    cols, total = grid.col_starts, len(grid)
    stats = stats if stats is not None else SlideStats()
    for band, r in enumerate(grid.row_starts):
        for i in range(0, len(cols), batch_size):
            group = cols[i : i + batch_size]
            c0 = group[0]
            data, valid = read((r, c0, th, group[-1] + tw - c0))
            acc.set_valid(valid, r, c0)
            keep = [c for c in group if valid[:, c - c0 : c - c0 + tw].any()]
            if keep:
                # each window prepared on its own: rules like ARAS400k's depend on the window
                batch = np.stack(
                    [
                        prepare(data[:, :, c - c0 : c - c0 + tw], valid[:, c - c0 : c - c0 + tw])
                        for c in keep
                    ]
                )
                h, w = batch.shape[-2:]
                batch = pad_bottom_right(batch, tile - h, tile - w)  # small scenes only
                logits = np.asarray(backend(batch), dtype=np.float32)  # no copy if float32
                expected = (len(keep), num_classes, tile, tile)
                if tuple(logits.shape) != expected:
                    raise RuntimeError(f"backend returned {tuple(logits.shape)}, not {expected}")
                for j, c in enumerate(keep):
                    acc.add(logits[j, :, :th, :tw], weight, r, c)
            stats.windows += len(group)
            stats.run += len(keep)
            if progress is not None:
                progress(stats.windows, total)
        yield acc.pop(grid.finished_rows(band))
