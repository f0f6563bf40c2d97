"""Sliding-window geometry, blending, the strip accumulator and exact stitching (numpy only)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from lale.inference import tiling
from lale.inference.tiling import (
    SlideStats,
    StripAccumulator,
    TileGrid,
    blend_weights,
    slide_inference,
    window_count,
    window_starts,
)

SIZES = [
    (1, 256, 192),
    (100, 256, 192),
    (256, 256, 192),
    (257, 256, 192),
    (448, 256, 192),  # exactly two windows
    (449, 256, 192),
    (1000, 256, 192),
    (10980, 256, 192),
    (37, 8, 8),  # no overlap
    (37, 8, 1),  # stride 1
]


@pytest.mark.parametrize(("size", "tile", "stride"), SIZES)
def test_window_starts_cover_the_axis(size: int, tile: int, stride: int) -> None:
    starts = window_starts(size, tile, stride)
    assert len(starts) == window_count(size, tile, stride)
    assert len(starts) == max(math.ceil((size - tile) / stride), 0) + 1
    extent = min(tile, size)
    assert starts[0] == 0
    assert starts[-1] + extent == size  # the last window is shifted back to end on the edge
    assert all(s >= 0 and s + extent <= size for s in starts)  # every window inside
    assert all(0 < b - a <= stride for a, b in itertools.pairwise(starts))
    covered = np.zeros(size, dtype=int)
    for s in starts:
        covered[s : s + extent] += 1
    assert covered.min() >= 1


def test_tile_grid_covers_every_pixel_once_or_more() -> None:
    grid = TileGrid(300, 517, tile=128, overlap=32)
    assert len(grid) == window_count(300, 128, 96) * window_count(517, 128, 96)
    assert len(list(grid.windows())) == len(grid)
    cover = np.zeros((300, 517), dtype=int)
    for r, c, h, w in grid.windows():
        assert (h, w) == (128, 128) and r + h <= 300 and c + w <= 517
        cover[r : r + h, c : c + w] += 1
    assert cover.min() >= 1
    assert grid.finished_rows(len(grid.row_starts) - 1) == 300
    assert grid.finished_rows(0) == grid.row_starts[1]


def test_tile_grid_smaller_than_tile_and_bad_options() -> None:
    grid = TileGrid(20, 30, tile=64, overlap=16)
    assert list(grid.windows()) == [(0, 0, 20, 30)]
    for tile, overlap in ((64, 64), (64, -1), (0, 0)):
        with pytest.raises(ValueError):
            TileGrid(20, 30, tile=tile, overlap=overlap)


def test_blend_weights() -> None:
    np.testing.assert_array_equal(blend_weights(8, 6, "uniform", 3), np.ones((8, 6)))
    w = blend_weights(64, 48, "smooth", 16)
    assert w.shape == (64, 48) and w.dtype == np.float32
    assert float(w.min()) > 0 and float(w.max()) == 1.0
    np.testing.assert_allclose(w, w[::-1])
    np.testing.assert_allclose(w, w[:, ::-1])
    assert float(w[32, 24]) == 1.0
    row = w[32]
    assert bool((row[1:17] >= row[:16]).all())  # rises over the overlap
    with pytest.raises(ValueError):
        blend_weights(4, 4, "gaussian", 2)  # type: ignore[arg-type]


def test_strip_accumulator_averages_and_shifts() -> None:
    acc = StripAccumulator(2, rows=4, width=5)
    ones = np.ones((2, 4, 3), np.float32)
    acc.add(ones * 2, np.full((4, 3), 1.0, np.float32), 0, 0)
    acc.add(ones * 4, np.full((4, 3), 3.0, np.float32), 0, 2)  # column 2: 2 and 4 by 1:3
    acc.set_valid(np.ones((4, 5), bool), 0, 0)
    top, mean, valid = acc.pop(3)
    assert top == 0 and mean.shape == (2, 3, 5) and valid.all()
    np.testing.assert_allclose(mean[0, 0], [2.0, 2.0, 3.5, 4.0, 4.0])
    assert acc.top == 3 and float(np.abs(acc.weight[1:]).sum()) == 0.0  # new rows are zero
    np.testing.assert_allclose(acc.logits[0, 0], [2.0, 2.0, 14.0, 12.0, 12.0])
    assert acc.valid[0].all() and not acc.valid[1:].any()
    with pytest.raises(ValueError, match="outside the open strip"):
        acc.add(ones, np.ones((4, 3), np.float32), 1, 0)


class _Pixelwise:
    """A 1×1-convolution backend in numpy: each output pixel depends only on its input pixel."""

    def __init__(self, channels: int = 3, classes: int = 5) -> None:
        rng = np.random.default_rng(0)
        self.weight = rng.normal(size=(classes, channels)).astype(np.float32)
        self.bias = rng.normal(size=(classes, 1, 1)).astype(np.float32)
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def conv(self, image: NDArray[np.float32]) -> NDArray[np.float32]:
        """Logits ``K×H×W`` of one ``C×H×W`` image."""
        return np.einsum("kc,chw->khw", self.weight, image) + self.bias

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        assert isinstance(batch, np.ndarray) and batch.dtype == np.float32
        self.calls += 1
        self.shapes.append(tuple(batch.shape))
        return np.stack([self.conv(x) for x in batch])


def _scene(h: int, w: int, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(3, h, w)).astype(np.float32)
    valid = np.ones((h, w), dtype=bool)
    valid[: h // 5, : w // 4] = False
    return image, valid


def _run(
    image: NDArray[np.float32],
    valid: NDArray[np.bool_],
    backend: Any,
    grid: TileGrid,
    reads: list[tuple[int, int, int, int]] | None = None,
    **kw: Any,
) -> tuple[NDArray[np.float32], NDArray[np.bool_], SlideStats]:
    def read(window: tuple[int, int, int, int]) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        if reads is not None:
            reads.append(window)
        r, c, h, w = window
        return image[:, r : r + h, c : c + w], valid[r : r + h, c : c + w]

    def prepare(data: NDArray[Any], ok: NDArray[np.bool_]) -> NDArray[np.float32]:
        return np.ascontiguousarray(data)

    stats = SlideStats()
    strips = list(slide_inference(read, prepare, backend, grid, 5, stats=stats, **kw))
    rows = [r for r, _, _ in strips]
    assert rows == sorted(rows) and rows[0] == 0
    logits = np.concatenate([s[1] for s in strips], axis=1)
    ok = np.concatenate([s[2] for s in strips])
    return logits, ok, stats


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "blend", "batch"),
    [
        (300, 517, 128, 32, "smooth", 3),
        (300, 517, 128, 32, "uniform", 8),
        (200, 200, 64, 0, "smooth", 2),
        (97, 130, 64, 60, "smooth", 5),  # stride 4: up to 16 windows per pixel
        (40, 50, 64, 16, "smooth", 4),  # smaller than a tile: padded
        (40, 500, 64, 16, "uniform", 4),  # one axis smaller than a tile
    ],
)
def test_tiled_prediction_equals_whole_image(
    h: int, w: int, tile: int, overlap: int, blend: str, batch: int
) -> None:
    image, valid = _scene(h, w)
    backend = _Pixelwise()
    grid = TileGrid(h, w, tile, overlap)
    logits, ok, stats = _run(image, valid, backend, grid, blend=blend, batch_size=batch)
    whole = backend.conv(image)
    assert logits.shape == (5, h, w) and logits.dtype == np.float32
    np.testing.assert_array_equal(ok, valid)
    np.testing.assert_allclose(logits[:, valid], whole[:, valid], atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(logits.argmax(0)[valid], whole.argmax(0)[valid])
    assert all(s[-2:] == (tile, tile) for s in backend.shapes)  # windows padded to the tile
    assert stats.windows == len(grid) and stats.run <= len(grid)


def test_windows_without_valid_pixels_are_not_run() -> None:
    image, valid = _scene(256, 256)
    valid[:] = True
    valid[:128] = False  # the top half is no-data
    backend = _Pixelwise()
    _, ok, stats = _run(image, valid, backend, TileGrid(256, 256, 64, 0), batch_size=4)
    assert stats.windows == 16 and stats.run == 8
    np.testing.assert_array_equal(ok, valid)


def test_memory_is_bounded_by_a_strip_and_reads_are_windowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, w, tile, overlap, batch = 700, 900, 128, 32, 3
    made: list[StripAccumulator] = []

    class Recording(StripAccumulator):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(tiling, "StripAccumulator", Recording)
    image, valid = _scene(h, w)
    reads: list[tuple[int, int, int, int]] = []
    _run(image, valid, _Pixelwise(), TileGrid(h, w, tile, overlap), reads, batch_size=batch)
    assert len(made) == 1
    acc = made[0]
    assert acc.logits.shape == (5, tile, w)  # one window height of rows, never the scene
    assert acc.logits.shape[1] * acc.logits.shape[2] <= (tile + overlap) * w
    assert acc.weight.shape == acc.valid.shape == (tile, w)
    stride = tile - overlap
    assert all(rh == tile and rw <= (batch - 1) * stride + tile for _, _, rh, rw in reads)
    assert len(reads) == len(TileGrid(h, w, tile, overlap).row_starts) * math.ceil(
        len(TileGrid(h, w, tile, overlap).col_starts) / batch
    )
