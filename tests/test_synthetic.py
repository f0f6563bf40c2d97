"""Tests for the synthetic ARAS400k-layout scenes (lale.data.synthetic) and the class schema."""

from __future__ import annotations

import io
import json
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from lale.data.io.png import encode_png
from lale.data.schema.aras import ARAS400K, BARREN, BUILT_UP, CROP, GRASS, SHRUB, TREE, WATER
from lale.data.synthetic import SPLITS, generate_scene, patch_rng, save_mosaic, write_dataset
from lale.data.synthetic.labels import worldcover_labels
from lale.data.synthetic.layout import build_layout

Sample = list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]


@pytest.fixture(scope="module")
def sample() -> Sample:
    """48 patches at the default size, seeded like the training split of seed 123."""
    return [generate_scene(patch_rng(123, "train", i)) for i in range(48)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_scene_shapes_and_dtypes() -> None:
    image, labels = generate_scene(0)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert labels.shape == (256, 256) and labels.dtype == np.uint8
    assert labels.max() < ARAS400K.num_classes
    image, labels = generate_scene(np.random.default_rng(1), size=96)
    assert image.shape == (96, 96, 3) and labels.shape == (96, 96)
    with pytest.raises(ValueError):
        generate_scene(0, size=8)


def test_scene_determinism() -> None:
    a_img, a_lab = generate_scene(42)
    b_img, b_lab = generate_scene(np.random.SeedSequence(42))
    c_img, _ = generate_scene(43)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)


def test_write_dataset_layout_and_bytes(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    counts = {"train": 3, "val": 2, "test": 2}
    summary = write_dataset(
        tmp_path / "a", **counts, seed=0, progress=lambda d, t: calls.append((d, t))
    )
    write_dataset(tmp_path / "b", **counts, seed=0)
    write_dataset(tmp_path / "c", **counts, seed=1)

    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert a == b, "same seed must give byte-identical files"
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    assert calls == [(i, 7) for i in range(1, 8)]

    palette = {tuple(int(v) for v in col) for col in ARAS400K.palette()}
    for split in SPLITS:
        images = sorted((tmp_path / "a" / split / "images").glob("*.png"))
        masks = sorted((tmp_path / "a" / split / "masks").glob("*.png"))
        assert len(images) == counts[split]
        assert [p.stem for p in images] == [p.stem for p in masks]
        for ip, mp in zip(images, masks, strict=True):
            with Image.open(ip) as im, Image.open(mp) as mk:
                assert im.mode == "RGB" and im.size == (256, 256)
                assert mk.mode == "RGB" and mk.size == (256, 256)
                colours = np.unique(np.asarray(mk).reshape(-1, 3), axis=0)
            assert {tuple(int(v) for v in col) for col in colours} <= palette
        assert summary.splits[split].count == counts[split]
        assert sum(summary.splits[split].class_pixels) == counts[split] * 256 * 256
    assert sum(summary.fractions.values()) == pytest.approx(1.0)
    saved = json.loads((tmp_path / "a" / "synthetic.json").read_text())
    assert saved["splits"]["train"]["count"] == 3 and saved["classes"] == list(ARAS400K.names)


def test_patches_are_independent_of_split_sizes_and_workers(tmp_path: Path) -> None:
    write_dataset(tmp_path / "small", train=2, val=1, test=0, size=64, seed=5)
    write_dataset(tmp_path / "big", train=3, val=2, test=1, size=64, seed=5, workers=2)
    small, big = _files(tmp_path / "small"), _files(tmp_path / "big")
    assert small and all(big[k] == v for k, v in small.items())


def test_every_class_appears_and_imbalance(sample: Sample) -> None:
    labels = np.stack([lab for _, lab in sample])
    pixels = np.bincount(labels.ravel(), minlength=ARAS400K.num_classes)
    frac = pixels / pixels.sum()
    print("class fractions:", dict(zip(ARAS400K.names, np.round(frac, 3), strict=True)))
    assert (pixels > 0).all(), "every class should appear in a few dozen patches"
    assert frac[TREE] + frac[GRASS] > 0.45
    assert frac[GRASS] > frac[SHRUB] and frac[TREE] > frac[SHRUB]
    for rare in (SHRUB, BUILT_UP, BARREN, WATER):
        assert frac[rare] < 0.15
    present = (labels[:, None] == np.arange(7)[None, :, None, None]).any(axis=(2, 3))
    assert present.sum(axis=1).min() < ARAS400K.num_classes, "not every class in every patch"
    assert present[:, CROP].mean() < 1.0


def test_labels_are_blobby_not_pixel_exact() -> None:
    rng = np.random.default_rng(3)
    agree = []
    for _ in range(6):
        layout = build_layout(rng)
        labels = worldcover_labels(layout.classes, rng)
        agree.append(float((labels == layout.classes).mean()))
    assert 0.8 < float(np.mean(agree)) < 0.995


def test_colour_alone_does_not_decide_the_class(sample: Sample) -> None:
    """A nearest-class-mean classifier on pixel RGB must score a low macro-F1."""
    k = ARAS400K.num_classes
    fit, held_out = sample[:24], sample[24:]
    x = np.concatenate([img.reshape(-1, 3) for img, _ in fit]).astype(np.float32)
    y = np.concatenate([lab.ravel() for _, lab in fit])
    means = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    cm = np.zeros((k, k), np.int64)
    for img, lab in held_out:
        d = ((img.reshape(-1, 1, 3).astype(np.float32) - means[None]) ** 2).sum(axis=-1)
        cm += np.bincount(lab.ravel() * k + d.argmin(axis=1), minlength=k * k).reshape(k, k)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    f1 = 2 * tp[denom > 0] / denom[denom > 0]
    macro = float(f1.mean())
    print(f"colour-only nearest-mean macro-F1: {macro:.3f} (per class {np.round(f1, 2)})")
    assert macro < 0.5


def test_generation_speed_sanity() -> None:
    generate_scene(0)
    start = time.process_time()
    for i in range(10):
        generate_scene(i)
    per_patch = (time.process_time() - start) / 10
    print(f"generate_scene: {per_patch * 1e3:.1f} ms CPU per 256² patch")
    assert per_patch < 0.1


def test_save_mosaic(tmp_path: Path, sample: Sample) -> None:
    path = tmp_path / "mosaic.png"
    save_mosaic(path, sample[:3], columns=2)
    with Image.open(path) as im:
        assert im.mode == "RGB"
        assert im.size[0] > 2 * 2 * 256 and im.size[1] > 2 * 256


def test_class_schema_round_trip() -> None:
    labels = np.tile(np.arange(ARAS400K.num_classes, dtype=np.uint8), (3, 1))
    rgb = ARAS400K.labels_to_rgb(labels)
    assert np.array_equal(ARAS400K.rgb_to_labels(rgb), labels)
    assert tuple(rgb[0, 0]) == (0, 100, 0) and tuple(rgb[0, -1]) == (0, 0, 255)
    odd = rgb.copy()
    odd[0, 0] = (1, 2, 3)
    decoded = ARAS400K.rgb_to_labels(odd)
    assert decoded[0, 0] == ARAS400K.ignore_index == 255
    assert np.array_equal(decoded[1:], labels[1:])


@pytest.mark.parametrize("shape", [(256, 256, 3), (5, 7, 3), (1, 1, 3)])
@pytest.mark.parametrize("strategy", [zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE])
def test_png_encoder_round_trips_through_pillow(shape: tuple[int, int, int], strategy: int) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(rgb, strategy))) as im:
        assert im.mode == "RGB"
        assert np.array_equal(np.asarray(im), rgb)
    with pytest.raises(ValueError):
        encode_png(rgb[..., :2])
