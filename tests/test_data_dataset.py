"""Tests for reading ARAS400k-layout datasets (lale.data.io, lale.data.dataset, lale.data.stats)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rasters import write_geotiff
from torch.utils.data import DataLoader

from lale.data.collate import PadCollate
from lale.data.dataset import SegmentationDataset, scan_split
from lale.data.io import read_image, read_info, read_mask
from lale.data.io.layout import skipped_message
from lale.data.schema import ARAS400K, WORLDCOVER, ClassSchema, ImageSpec
from lale.data.stats import compute_band_stats
from lale.data.synthetic import write_dataset
from lale.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentinel2-amazon"
PAL = ARAS400K.palette()


def _pair(
    root: Path, name: str, image: np.ndarray, mask: np.ndarray | Image.Image, split: str = "train"
) -> None:
    """Write ``root/split/{images,masks}/name.png`` (``mask`` an array or a ready PIL image)."""
    for sub in ("images", "masks"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / split / "images" / f"{name}.png")
    mask_im = mask if isinstance(mask, Image.Image) else Image.fromarray(mask)
    mask_im.save(root / split / "masks" / f"{name}.png")


def _labels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 7, (h, w), dtype=np.uint8)


def _coords(h: int, w: int) -> np.ndarray:
    """An RGB image whose pixels encode their own position: (row, col, 7)."""
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([r, c, np.full_like(r, 7)], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, train=3, val=2, test=1, size=64, seed=5)
    return root


def test_synthetic_dataset_eval_and_train(synthetic: Path) -> None:
    val = SegmentationDataset(synthetic, "val")
    assert val.mode == "eval" and len(val) == 2 and val.names == ["val_000000", "val_000001"]
    image, mask = val[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
    assert mask.shape == (64, 64) and mask.dtype == torch.uint8 and int(mask.max()) < 7
    ref = np.asarray(Image.open(synthetic / "val" / "images" / "val_000000.png"))
    assert np.array_equal(image.permute(1, 2, 0).numpy(), ref)
    train = SegmentationDataset(synthetic, "train", crop_size=48)
    assert train.mode == "train" and train[0][0].shape == (3, 48, 48)
    assert train.check().counts == {} and train.unknown_pixels().checked == 3


def test_unknown_colours_are_ignored_counted_reported_once_and_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rgb = PAL[_labels(16, 16)]
    odd = rgb.copy()
    odd[:2, :5] = (1, 2, 3)  # 10 pixels of a colour that is not a class
    _pair(tmp_path, "a", _coords(16, 16), rgb)
    _pair(tmp_path, "b", _coords(16, 16), odd)
    ds = SegmentationDataset(tmp_path, "train", mode="eval")
    _, mask = ds[1]
    assert (mask[:2, :5] == 255).all() and (mask[2:] < 7).all()
    assert ds.unknown_pixels().counts == {"b.png": 10}
    with caplog.at_level(logging.WARNING, logger="lale.data"):
        ds[0]
        report = ds.report_unknown()
        ds.report_unknown()
    assert report.counts == {"b.png": 10} and report.checked == 2 and report.total == 10
    warnings = [r for r in caplog.records if "b.png" in r.getMessage()]
    assert len(warnings) == 1 and "10 px" in warnings[0].getMessage()
    assert "(1,2,3)" in warnings[0].getMessage()
    strict = SegmentationDataset(tmp_path, "train", mode="eval", strict=True)
    strict[0]
    with pytest.raises(DataError, match=r"b\.png: 10 pixels .*\(1,2,3\)") as err:
        strict[1]
    assert "\n" not in str(err.value)


def test_unknown_counts_cross_dataloader_workers(tmp_path: Path) -> None:
    odd = PAL[_labels(8, 8)]
    odd[0, 0] = (9, 9, 9)
    for i in range(4):
        _pair(tmp_path, f"p{i}", _coords(8, 8), odd if i == 2 else PAL[_labels(8, 8)])
    ds = SegmentationDataset(tmp_path, "train", mode="eval")
    batches = list(DataLoader(ds, batch_size=2, num_workers=1))
    assert len(batches) == 2 and batches[0][0].shape == (2, 3, 8, 8)
    report = ds.unknown_pixels()
    assert report.counts == {"p2.png": 1} and report.checked == 4


def test_palette_and_index_masks(tmp_path: Path) -> None:
    labels = _labels(12, 10)
    pal_im = Image.fromarray(labels, mode="P")
    pal_im.putpalette(PAL.ravel().tolist())
    _pair(tmp_path, "pal", _coords(12, 10), pal_im)
    index = labels.copy()
    index[0, 0] = 200  # an unknown value
    _pair(tmp_path, "idx", _coords(12, 10), index)
    ds = SegmentationDataset(tmp_path, "train", mode="eval")
    assert np.array_equal(ds[ds.names.index("pal")][1].numpy(), labels)
    got = ds[ds.names.index("idx")][1].numpy()
    assert got[0, 0] == 255 and np.array_equal(got.ravel()[1:], labels.ravel()[1:])
    assert ds.unknown_pixels().counts == {"idx.png": 1}


def test_uint16_index_png_with_worldcover_codes(tmp_path: Path) -> None:
    codes = np.array([[10, 20, 0], [95, 100, 7]], np.uint16)
    path = tmp_path / "wc.png"
    Image.fromarray(codes).save(path)
    mask = read_mask(path, WORLDCOVER)
    assert mask.labels.tolist() == [[0, 1, 255], [9, 10, 255]]
    assert mask.unknown == 1 and mask.examples == ("7",)


def test_geotiff_uint16_images_and_index_masks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 10000, (4, 40, 50), dtype=np.uint16)
    labels = rng.integers(1, 5, (1, 40, 50), dtype=np.uint8)
    labels[0, :5, :7] = 0  # no-data region of the label raster
    for split in ("train", "val"):
        write_geotiff(tmp_path / split / "images" / "t.tif", image)
        write_geotiff(tmp_path / split / "masks" / "t.tif", labels, nodata=0)
    spec = ImageSpec(band_count=4, bands=(3, 2, 1), dtype="uint16", scale=10000)
    schema = ClassSchema(("a", "b", "c", "d"), values=(1, 2, 3, 4), ignore_values=(0,), image=spec)
    val = SegmentationDataset(tmp_path, "val", schema)
    img, mask = val[0]
    assert img.dtype == torch.float32 and img.shape == (3, 40, 50)
    assert np.array_equal(img.numpy(), image[[2, 1, 0]].astype(np.float32))
    assert (mask[:5, :7] == 255).all() and np.array_equal(mask[5:].numpy(), labels[0, 5:] - 1)
    assert val.unknown_pixels().counts == {}
    gen = torch.Generator().manual_seed(0)
    train = SegmentationDataset(tmp_path, "train", schema, crop_size=16, generator=gen)
    for _ in range(5):  # every crop is some 16×16 window of the scene, mask aligned
        img, mask = train[0]
        assert img.shape == (3, 16, 16) and mask.shape == (16, 16)
        band3 = image[2].astype(np.float32)
        hits = [
            (r, c)
            for r in range(25)
            for c in range(35)
            if np.array_equal(band3[r : r + 16, c : c + 16], img[0].numpy())
        ]
        assert len(hits) == 1
        r, c = hits[0]
        expect = np.where(labels[0] == 0, 255, labels[0] - 1)[r : r + 16, c : c + 16]
        assert np.array_equal(mask.numpy(), expect)
    with pytest.raises(DataError, match=r"t\.tif: image has 4 bands but the schema expects 3"):
        SegmentationDataset(tmp_path, "val")  # the default schema expects 8-bit RGB


def test_random_crops_pad_with_ignore_and_are_deterministic(tmp_path: Path) -> None:
    _pair(tmp_path, "big", _coords(50, 60), PAL[_labels(50, 60)])
    _pair(tmp_path, "small", _coords(20, 12), PAL[_labels(20, 12, 1)])

    def crops(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        ds = SegmentationDataset(tmp_path, "train", crop_size=32, generator=gen)
        return [ds[i] for i in (0, 1, 0, 1)]

    a, b, c = crops(0), crops(0), crops(1)
    assert all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    big_labels = ARAS400K.rgb_to_labels(PAL[_labels(50, 60)])
    for img, mask in a[::2]:  # "big": a real crop, position read back from the pixels
        r, k = int(img[0, 0, 0]), int(img[1, 0, 0])
        assert torch.equal(
            img[:2], torch.from_numpy(_coords(50, 60)[r : r + 32, k : k + 32, :2]).permute(2, 0, 1)
        )
        assert np.array_equal(mask.numpy(), big_labels[r : r + 32, k : k + 32])
    for img, mask in a[1::2]:  # "small" (20×12): padded to 32×32, padding ignored and black
        inside = img[2] == 7
        assert img.shape == (3, 32, 32) and int(inside.sum()) == 20 * 12
        assert (mask[~inside] == 255).all() and (mask[inside] < 7).all()
        assert (img[:, ~inside] == 0).all()


def test_pad_collate_batches_images_of_different_sizes() -> None:
    batch = [
        (torch.ones(3, 4, 5, dtype=torch.uint8), torch.zeros(4, 5, dtype=torch.uint8)),
        (torch.ones(3, 6, 2, dtype=torch.uint8), torch.ones(6, 2, dtype=torch.uint8)),
    ]
    images, masks = PadCollate(255)(batch)
    assert images.shape == (2, 3, 6, 5) and masks.shape == (2, 6, 5)
    assert int(images[0].sum()) == 3 * 4 * 5 and (masks[0, 4:] == 255).all()
    assert (masks[1, :, 2:] == 255).all() and (masks[1, :, :2] == 1).all()


def test_scan_errors_name_the_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no 'val' split folder"):
        scan_split(tmp_path, "val")
    (tmp_path / "val" / "images").mkdir(parents=True)
    (tmp_path / "val" / "masks").mkdir()
    with pytest.raises(DataError, match=r"val: empty split"):
        SegmentationDataset(tmp_path, "val")
    for i in range(7):
        _pair(tmp_path, f"only{i}", _coords(4, 4), PAL[_labels(4, 4)], split="val")
        (tmp_path / "val" / "masks" / f"only{i}.png").unlink()
    with pytest.raises(DataError, match=r"7 images without masks: only0.png, .* and 2 more"):
        scan_split(tmp_path, "val")
    _pair(tmp_path, "x", _coords(4, 4), PAL[_labels(4, 4)], split="test")
    (tmp_path / "test" / "images" / "x.png").unlink()
    with pytest.raises(DataError, match=r"masks: 1 masks without images: x.png"):
        scan_split(tmp_path, "test")
    _pair(tmp_path, "y", _coords(4, 4), PAL[_labels(4, 4)], split="dup")
    Image.fromarray(_coords(4, 4)).save(tmp_path / "dup" / "images" / "y.jpg")
    with pytest.raises(DataError, match=r"y\.(jpg|png): same stem as y\.(png|jpg)"):
        scan_split(tmp_path, "dup")
    _pair(tmp_path, "z", _coords(4, 4), PAL[_labels(4, 4)], split="odd")
    (tmp_path / "odd" / "masks" / "z.jpg").write_bytes(b"")
    (tmp_path / "odd" / "masks" / ".hidden").write_bytes(b"")
    skipped: list[Path] = []
    assert [p.name for p in scan_split(tmp_path, "odd", skipped)] == ["z"]
    assert sorted(p.name for p in skipped) == [".hidden", "z.jpg"]
    assert skipped_message(skipped).startswith("skipped 2 files that are not images or masks in")


def test_bad_files_raise_one_line_errors_naming_them(tmp_path: Path) -> None:
    _pair(tmp_path, "ok", _coords(32, 32), PAL[_labels(32, 32)])
    _pair(tmp_path, "size", _coords(32, 32), PAL[_labels(31, 32)])
    with pytest.raises(
        DataError, match=r"masks/size\.png: mask is 31×32 but image size\.png is 32×32"
    ):
        SegmentationDataset(tmp_path, "train")
    ds = SegmentationDataset(tmp_path, "train", mode="eval", check_headers=False)
    with pytest.raises(DataError, match=r"size\.png: mask is 31×32"):
        ds[1]
    (tmp_path / "train" / "masks" / "size.png").unlink()
    (tmp_path / "train" / "images" / "size.png").unlink()

    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    _pair(tmp_path, "trunc", noisy, PAL[_labels(64, 64)])
    path = tmp_path / "train" / "images" / "trunc.png"
    path.write_bytes(path.read_bytes()[:-2000])  # header intact, pixel data cut short
    with pytest.raises(DataError, match=r"images/trunc\.png: truncated image: its 'IDAT'"):
        SegmentationDataset(tmp_path, "train", mode="eval")  # the header reads, the rest is cut
    ds = SegmentationDataset(tmp_path, "train", mode="eval", check_headers=False)
    with pytest.raises(DataError, match=r"images/trunc\.png: unreadable image") as err:
        ds[ds.names.index("trunc")]
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"trunc\.png: truncated image"):
        ds.check()
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"images/trunc\.png: unreadable image"):
        SegmentationDataset(tmp_path, "train")
    path.unlink()
    (tmp_path / "train" / "masks" / "trunc.png").unlink()

    rgba = np.dstack([_coords(8, 8), np.full((8, 8), 255, np.uint8)])
    _pair(tmp_path, "rgba", rgba, PAL[_labels(8, 8)])
    SegmentationDataset(tmp_path, "train")  # an alpha band is dropped, not a fourth band
    assert read_image(tmp_path / "train" / "images" / "rgba.png").shape == (3, 8, 8)
    with pytest.raises(DataError, match=r"rgba\.png: image has 4 bands but the schema expects 2"):
        read_image(tmp_path / "train" / "images" / "rgba.png", ImageSpec(band_count=2))
    spec = ImageSpec(band_count=4, dtype="uint16", scale=1000)
    with pytest.raises(DataError, match=r"rgba\.png: image samples are uint8 but the schema"):
        read_image(tmp_path / "train" / "images" / "rgba.png", spec)


def test_truncated_geotiff_is_a_one_line_error(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(0, 60000, (2, 64, 64), dtype=np.uint16)
    path = tmp_path / "cut.tif"
    write_geotiff(path, data)
    spec = ImageSpec(band_count=2, dtype="uint16", scale=10000)
    assert read_image(path, spec).shape == (2, 64, 64)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.tif: unreadable image") as err:
        read_image(path, spec)
    assert "\n" not in str(err.value)
    good = tmp_path / "good.tif"
    write_geotiff(good, data)
    with pytest.raises(DataError, match=r"good\.tif: image has 2 bands but the schema expects 3"):
        read_image(good)
    with pytest.raises(DataError, match=r"missing\.tif: unreadable image"):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(DataError, match=r"missing\.png: unreadable image"):
        read_image(tmp_path / "missing.png")


def test_colour_mask_needs_schema_colours(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    Image.fromarray(PAL[_labels(4, 4)]).save(path)
    index_only = ClassSchema(("a", "b"))
    with pytest.raises(DataError, match=r"m\.png: colour mask, but schema 'custom' has no"):
        read_mask(path, index_only)
    assert read_info(path).count == 3


def test_band_stats_stream_over_a_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 5000, (2, 9, 7 + i), dtype=np.uint16) for i in range(3)]
    for i, img in enumerate(images):
        write_geotiff(tmp_path / "train" / "images" / f"{i}.tif", img)
        write_geotiff(tmp_path / "train" / "masks" / f"{i}.tif", np.zeros((1, 9, 7 + i), np.uint8))
    spec = ImageSpec(band_count=2, dtype="uint16", scale=10000, offset=-1000)
    calls: list[tuple[int, int]] = []
    stats = compute_band_stats(
        tmp_path,
        "train",
        ClassSchema(("a",), image=spec),
        progress=lambda d, t: calls.append((d, t)),
    )
    pixels = np.concatenate([im.reshape(2, -1) for im in images], axis=1).astype(np.float64)
    scaled = (pixels - 1000) / 10000
    assert np.allclose(stats.mean, scaled.mean(axis=1)) and np.allclose(
        stats.std, scaled.std(axis=1)
    )
    assert stats.pixels == (9 * 24, 9 * 24) and stats.images == 3 and calls[-1] == (3, 3)
    first = compute_band_stats(tmp_path, "train", ClassSchema(("a",), image=spec), max_images=1)
    assert first.images == 1


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared Sentinel-2 sample not found at {SHARED}")
def test_real_sentinel2_geotiff_band_selection() -> None:
    pytest.importorskip("rasterio")
    spec = ImageSpec(band_count=12, bands=(4, 3, 2), dtype="float32", scale=1.0)
    rgb = read_image(SHARED / "images" / "sen2_amazon_12band.tif", spec)
    assert rgb.shape == (3, 237, 247) and rgb.dtype == np.float32
    assert rgb.min() > 0.0 and rgb.max() < 1.0 and np.isfinite(rgb).all()
    window = read_image(SHARED / "images" / "sen2_amazon_12band.tif", spec, (10, 20, 30, 40))
    assert np.array_equal(window, rgb[:, 10:40, 20:60])
    schema = ClassSchema(
        ("dryout", "forest", "village", "water"), values=(1, 2, 3, 4), ignore_values=(0,)
    )
    mask = read_mask(SHARED / "masks" / "sen2_amazon_trainingPolygons_sparse.tif", schema)
    assert mask.unknown == 0 and mask.labels.shape == (237, 247)
    counts = np.bincount(mask.labels.ravel(), minlength=256)
    assert counts[:4].tolist() == [204, 1056, 614, 496]
