"""Figures: every plot writes a readable PNG; display_image gives H×W×3 uint8."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lale.data.schema import ARAS400K, ImageSpec
from lale.training.figures import (
    display_image,
    plot_confusion,
    plot_history,
    plot_per_class,
    plot_samples,
)
from lale.training.metrics import scores_from_confusion

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_side: int = 200, max_bytes: int = 1_000_000) -> tuple[int, int]:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size < max_bytes
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        width, height = im.size
    assert min_side <= width <= 4000 and min_side <= height <= 6000
    return width, height


@pytest.fixture
def scores() -> dict[str, Any]:
    """Scores of a random 7-class matrix; class 5 is absent (never true, never predicted)."""
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 400, size=(7, 7)) + np.diag(rng.integers(2000, 90_000, size=7))
    cm[5, :] = 0
    cm[:, 5] = 0
    cm[6, :] = 0  # class 6: predicted but never true (zero support)
    return scores_from_confusion(cm, ARAS400K.names)


def test_plot_confusion(scores: dict[str, Any], tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division warnings for zero-support rows
        out = plot_confusion(scores, tmp_path / "new" / "dir" / "confusion.png")
    assert out == tmp_path / "new" / "dir" / "confusion.png"
    _check_png(out)


def test_plot_per_class(scores: dict[str, Any], tmp_path: Path) -> None:
    assert scores["per_class"]["Barren"]["f1"] is None
    _check_png(plot_per_class(scores, tmp_path / "per_class.png"))


def _scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size] / size
    truth = (np.floor(xx * 3) + 3 * np.floor(yy * 2)).astype(np.uint8) % 7
    truth[: size // 8, : size // 8] = ARAS400K.ignore_index
    pred = truth.copy()
    pred[pred == ARAS400K.ignore_index] = 0
    flip = rng.random((size, size)) < 0.1
    pred[flip] = rng.integers(0, 7, size=int(flip.sum()))
    colors = np.asarray(ARAS400K.display_colors, dtype=np.float32)[truth % 7]
    noise = rng.normal(0, 12, size=(size, size, 3))
    image = np.clip(colors * 0.7 + 40 * xx[..., None] + noise, 0, 255).astype(np.uint8)
    return image, truth, pred


def test_plot_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = [_scene(rng, 256) for _ in range(8)]
    out = plot_samples(samples, ARAS400K, tmp_path / "samples.png", title="val samples, epoch 3")
    width, height = _check_png(out, max_bytes=1_000_000)
    assert height > width  # eight rows of three panels


def test_plot_samples_rejects_unknown_labels(tmp_path: Path) -> None:
    image, truth, pred = _scene(np.random.default_rng(2), 32)
    truth[0, 0] = 42
    with pytest.raises(ValueError, match="42"):
        plot_samples([(image, truth, pred)], ARAS400K, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no samples"):
        plot_samples([], ARAS400K, tmp_path / "none.png")


def test_plot_history(tmp_path: Path) -> None:
    rows: list[dict[str, float | None]] = []
    for epoch in range(12):
        rows.append(
            {
                "epoch": epoch,
                "train/loss": 1.2 * 0.8**epoch + 0.1,
                "val/loss": 1.3 * 0.85**epoch + 0.2 + 0.01 * max(0, epoch - 8),
                "val/macro_f1": None if epoch == 0 else 0.8 - 0.5 * 0.7**epoch - 0.005 * epoch,
                "lr": 1e-3 * 0.5 * (1 + np.cos(np.pi * epoch / 12)),
            }
        )
    _check_png(plot_history(rows, tmp_path / "history.png"))
    # No scores at all (e.g. a run without validation) still draws.
    _check_png(plot_history([{"epoch": 0, "train/loss": 1.0}], tmp_path / "h2.png"))


@pytest.mark.parametrize(
    ("image", "spec"),
    [
        (np.random.default_rng(0).integers(0, 256, (3, 20, 30)).astype(np.uint8), ImageSpec()),
        (
            np.random.default_rng(0).integers(0, 12_000, (4, 20, 30)).astype(np.uint16),
            ImageSpec(band_count=4, dtype="uint16", scale=10_000, offset=-1000),
        ),
        (
            np.random.default_rng(0).normal(0.1, 0.03, (1, 20, 30)).astype(np.float32),
            ImageSpec(band_count=1, dtype="float32", scale=1.0, mean=(0.1,), std=(0.03,)),
        ),
    ],
    ids=["uint8-rgb", "uint16-4band", "float-1band"],
)
def test_display_image(image: np.ndarray, spec: ImageSpec) -> None:
    out = display_image(image, spec)
    assert out.dtype == np.uint8
    assert out.shape == (20, 30, 3)
    assert out.min() < 30 and out.max() > 225  # stretched over the range
    if image.dtype == np.uint8:
        np.testing.assert_array_equal(out, image.transpose(1, 2, 0))
    if image.shape[0] == 1:
        np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_display_image_nan_and_flat() -> None:
    image = np.full((3, 8, 8), 500.0, dtype=np.float32)
    image[:, 0, 0] = np.nan
    out = display_image(image, ImageSpec(dtype=None, scale=1.0))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert (out == 0).all()
    with pytest.raises(ValueError, match="C×H×W"):
        display_image(np.zeros((1, 2, 3, 4)), ImageSpec())
