"""Tests for ``lale prepare``: Sentinel-2 tiles + WorldCover maps → ARAS400k-layout patches.

The fixtures are made here with rasterio: a 4-band uint16 Sentinel-2-like tile in UTM 35N (10 m)
with nodata and all-zero areas, and WorldCover labels in EPSG:4326 at ~4.3 × 5.6 m split over
two tiles (one of them stopping short of the image), so every patch is warped. Label values are a
function of UTM position (:func:`code_at`), with all region borders on image pixel edges, so the
expected mask of any patch is known exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

rasterio = pytest.importorskip("rasterio")

from rasterio.enums import MaskFlags  # noqa: E402
from rasterio.io import DatasetReader  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.warp import transform as warp_points  # noqa: E402
from rasterio.windows import Window  # noqa: E402
from rasters import write_geotiff  # noqa: E402

from lale import cli  # noqa: E402
from lale.data.io.bands import parse_bands  # noqa: E402
from lale.data.io.rasters import (  # noqa: E402
    aras400k_uint8,
    band_offsets,
    read_image_window,
    to_uint8,
)
from lale.data.prepare import (  # noqa: E402
    SPLITS,
    PrepareError,
    PrepareOptions,
    PrepareSummary,
    assign_splits,
    parse_offset,
    parse_split,
    prepare_dataset,
    remap_worldcover,
)
from lale.data.schema.aras import ARAS400K  # noqa: E402
from lale.errors import DataError, UsageError  # noqa: E402

runner = CliRunner()

# rasterio 1.4 still multiplies Affine objects with `*`, which affine 3 flags on every window.
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

P = 16  # patch side
ROWS = COLS = 8  # complete patches; one incomplete column of 5 px follows on the right
WIDTH, HEIGHT = COLS * P + 5, ROWS * P
RES = 10.0
X0 = 500_000.0 - 4 * P * RES  # the 27°E meridian (the label tiles' seam) is patch column 4
Y0 = 4_400_000.0
UTM, GEO = "EPSG:32635", "EPSG:4326"
LABEL_RES = 0.00005  # degrees: ~4.3 m east-west, ~5.6 m north-south at 39.7°N
BASE = (10, 20, 30, 40, 50, 60, 90, 95, 100, 70)  # patch (r, c) has BASE[(8r + c) % 10]
UNKNOWN_CODE = 111
BLOCK = 2
FRACTIONS = (0.6, 0.2, 0.2)
RGB_BANDS = (3, 2, 1)  # the fixture's bands are B02, B03, B04, B08

#: WorldCover code → ARAS400k class, written out independently of the library's table.
EXPECTED_CLASS = {10: 0, 20: 1, 30: 2, 40: 3, 50: 4, 60: 5, 80: 6, 90: 2, 100: 2, 95: 0, 70: 5}
EXPECTED_DROPS = {
    "edge": ROWS,  # the 5-px column
    "image_black": 1,  # (6, 0)
    "image_nodata": 1,  # (6, 1)
    "label_outside": 4,  # (7, 4..7): the east label tile stops mid-row 7
    "label_nodata": 1,  # (1, 6)
    "label_unknown": 1,  # (2, 6)
    "mostly_water": 1,  # (5, 1); (5, 2) is 81 % water and kept
}
WRITTEN = ROWS * COLS - sum(EXPECTED_DROPS.values()) + EXPECTED_DROPS["edge"]


def base_code(row: int, col: int) -> int:
    return BASE[(row * COLS + col) % len(BASE)]


def code_at(e: NDArray[np.float64], n: NDArray[np.float64]) -> NDArray[np.int64]:
    """WorldCover code at UTM position ``(e, n)`` (any shape)."""
    col = np.floor((e - X0) / (P * RES)).astype(np.int64)
    row = np.floor((Y0 - n) / (P * RES)).astype(np.int64)
    x = (e - X0) / RES - col * P  # position inside the patch, in image pixels
    y = (Y0 - n) / RES - row * P
    code = np.asarray(BASE)[(row * COLS + col) % len(BASE)]
    code = np.where((col == 3) & (x >= 6) & (x < 10), 80, code)  # a 40 m river, x in [6, 10)
    code = np.where((row == 5) & (col == 1), 80, code)
    code = np.where((row == 5) & (col == 2) & (x >= 3), 80, code)
    square = (x >= 4) & (x < 7) & (y >= 4) & (y < 7)
    code = np.where((row == 1) & (col == 6) & square, 0, code)
    return np.where((row == 2) & (col == 6) & square, UNKNOWN_CODE, code)


def expected_classes(row: int, col: int) -> NDArray[np.int64]:
    """ARAS400k classes of patch ``(row, col)`` at its pixel centres."""
    j, i = np.meshgrid(np.arange(P), np.arange(P))
    e = X0 + (col * P + j + 0.5) * RES
    n = Y0 - (row * P + i + 0.5) * RES
    return np.vectorize(EXPECTED_CLASS.__getitem__)(code_at(e, n))


def image_dn() -> NDArray[np.uint16]:
    """Band values of the imagery fixture (0 is its nodata)."""
    dn = np.random.default_rng(0).integers(300, 3000, size=(4, HEIGHT, WIDTH), dtype=np.uint16)
    dn[:, 6 * P : 7 * P, 0:P] = 0  # patch (6, 0): all black
    dn[:, 6 * P : 6 * P + 4, P : P + 4] = 0  # patch (6, 1): a nodata corner
    return dn


def tci(dn: NDArray[np.integer], offset: int = 0) -> NDArray[np.uint8]:
    """ESA's TCI rule written out: clip(round((DN + offset) / 10000 / 0.2 * 255), 0, 255)."""
    return np.clip(np.rint((dn.astype(np.float64) + offset) * 255 / 2000), 0, 255).astype(np.uint8)


def write_image(path: Path, dn: NDArray[np.uint16], crs: str | None = UTM, **tags: Any) -> Path:
    return write_geotiff(
        path,
        dn,
        crs=crs,
        transform=from_origin(X0, Y0, RES, RES),
        nodata=0,
        descriptions=("B02", "B03", "B04", "B08")[: dn.shape[0]],
        tags=tags,
        tiled=True,
        blockxsize=32,
        blockysize=32,
    )


def write_labels(
    path: Path, west: float, east: float, south: float, north: float, **kw: Any
) -> Path:
    """A WorldCover-like uint8 tile in EPSG:4326 filled by :func:`code_at`."""
    width = round((east - west) / LABEL_RES)
    height = round((north - south) / LABEL_RES)
    lon = west + (np.arange(width) + 0.5) * LABEL_RES
    lat = north - (np.arange(height) + 0.5) * LABEL_RES
    lons, lats = np.meshgrid(lon, lat)
    e, n = warp_points(GEO, UTM, lons.ravel(), lats.ravel())
    codes = code_at(np.asarray(e), np.asarray(n)).reshape(height, width).astype(np.uint8)
    transform = from_origin(west, north, LABEL_RES, LABEL_RES)
    return write_geotiff(path, codes[None], crs=GEO, transform=transform, **kw)


@dataclass(frozen=True)
class Scene:
    image: Path
    labels: Path  # folder with the two label tiles
    far_labels: Path  # a label tile over no imagery


def make_scene(root: Path) -> Scene:
    root.mkdir(parents=True, exist_ok=True)
    image = write_image(root / "S2_T35SLC.tif", image_dn())
    xs = [X0, X0 + WIDTH * RES, X0, X0 + WIDTH * RES]
    ys = [Y0, Y0, Y0 - HEIGHT * RES, Y0 - HEIGHT * RES]
    lons, lats = warp_points(UTM, GEO, xs, ys)
    margin = 20 * LABEL_RES
    west = 27 - math.ceil((27 - min(lons)) / LABEL_RES + 20) * LABEL_RES
    east = 27 + math.ceil((max(lons) - 27) / LABEL_RES + 20) * LABEL_RES
    north, south = max(lats) + margin, min(lats) - margin
    _, (cut,) = warp_points(UTM, GEO, [X0 + 6 * P * RES], [Y0 - 7.5 * P * RES])
    labels = root / "worldcover"
    labels.mkdir()
    write_labels(labels / "wc_west.tif", west, 27.0, south, north, nodata=0)
    write_labels(labels / "wc_east.tif", 27.0, east, cut, north)
    far = write_labels(root / "wc_far.tif", 40.0, 40.001, 10.0, 10.001)
    return Scene(image=image, labels=labels, far_labels=far)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("scene"))


def options(**kw: Any) -> PrepareOptions:
    return PrepareOptions(
        **{"patch": P, "bands": RGB_BANDS, "split": FRACTIONS, "block": BLOCK, "seed": 0, **kw}
    )


@pytest.fixture(scope="module")
def prepared(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> PrepareSummary:
    out = tmp_path_factory.mktemp("prepared") / "out"
    return prepare_dataset([scene.image], [scene.labels], out, options())


def split_of(root: Path, ext: str = "png") -> dict[str, str]:
    """Patch name → split, from the files on disk (images and masks must pair up)."""
    found: dict[str, str] = {}
    for split in SPLITS:
        images = {p.stem for p in (root / split / "images").glob(f"*.{ext}")}
        masks = {p.stem for p in (root / split / "masks").glob("*.png")}
        assert images == masks
        found.update(dict.fromkeys(images, split))
    return found


def row_col(name: str) -> tuple[int, int]:
    r, c = name.rsplit("_", 2)[-2:]
    return int(r[1:]), int(c[1:])


# --- units -------------------------------------------------------------------------------


def test_tci_scaling_rule() -> None:
    dn = np.array([0, 1, 4, 1000, 1500, 2000, 2001, 65535], np.uint16).reshape(1, 1, -1)
    assert to_uint8(dn, [0]).ravel().tolist() == [0, 0, 1, 128, 191, 255, 255, 255]
    # processing baseline >= 04.00: BOA_ADD_OFFSET = -1000
    assert to_uint8(dn, [-1000]).ravel().tolist() == [0, 0, 0, 0, 64, 128, 128, 255]
    refl = np.array([0.0, 0.05, 0.1, 0.2, 0.5, -0.1, np.nan], np.float32).reshape(1, 1, -1)
    assert to_uint8(refl, [-1000]).ravel().tolist() == [0, 64, 128, 255, 255, 0, 0]
    raw = np.array([0, 7, 255], np.uint8).reshape(1, 1, -1)
    assert to_uint8(raw, [-1000]).ravel().tolist() == [0, 7, 255]
    two = np.full((2, 1, 1), 1000, np.int16)
    assert to_uint8(two, [0, -1000]).ravel().tolist() == [128, 0]


def test_band_offsets_from_tags(tmp_path: Path) -> None:
    dn = np.full((4, 8, 8), 1000, np.uint16)
    path = write_image(tmp_path / "baseline4.tif", dn, BOA_ADD_OFFSET="-1000")
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(2, BOA_ADD_OFFSET="-500")
    with rasterio.open(path) as ds:
        assert band_offsets(ds, (3, 2, 1), None) == (-1000, -500, -1000)
        assert band_offsets(ds, (3, 2, 1), 0) == (0, 0, 0)
    with rasterio.open(write_image(tmp_path / "old.tif", dn)) as ds:
        assert band_offsets(ds, (1,), None) == (0,)


def _write(path: Path, data: NDArray[Any], mask: NDArray[Any] | None = None, **kw: Any) -> Path:
    transform = from_origin(X0, Y0, RES, RES)
    return write_geotiff(path, data, crs=UTM, transform=transform, mask=mask, **kw)


def test_image_validity_follows_the_raster_masks(tmp_path: Path) -> None:
    window = Window(0, 0, 8, 8)
    dn = np.full((2, 8, 8), 500, np.uint16)
    dn[0, 0, 0] = 7  # the nodata value, in band 1 only
    with rasterio.open(_write(tmp_path / "nodata.tif", dn, nodata=7)) as ds:
        _, valid = read_image_window(ds, (1, 2), window)
        assert np.flatnonzero(~valid).tolist() == [0]
        assert read_image_window(ds, (2,), window)[1].all()
    refl = np.full((1, 8, 8), 0.1, np.float32)
    refl[0, 1, 1], refl[0, 2, 2] = -9999, np.nan
    with rasterio.open(_write(tmp_path / "float.tif", refl, nodata=-9999)) as ds:
        assert np.flatnonzero(~read_image_window(ds, (1,), window)[1]).tolist() == [9, 18]
    mask = np.full((8, 8), 255, np.uint8)
    mask[2:4, 2:4] = 0  # an internal (per-dataset) mask, no nodata value
    with rasterio.open(_write(tmp_path / "mask.tif", dn, mask=mask)) as ds:
        assert ds.mask_flag_enums[0] == [MaskFlags.per_dataset]
        np.testing.assert_array_equal(read_image_window(ds, (1,), window)[1], mask > 0)


def test_remap_worldcover() -> None:
    codes = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100, 0, 111, 255, 65535, -3])
    expected = [0, 1, 2, 3, 4, 5, 5, 6, 2, 0, 2, 255, 255, 255, 255, 255]
    assert remap_worldcover(codes).tolist() == expected


def test_parse_options() -> None:
    assert parse_bands("4,3,2") == (4, 3, 2)
    assert parse_split("0.7, 0.2, 0.1") == (0.7, 0.2, 0.1)
    assert parse_offset("auto") is None and parse_offset("-1000") == -1000
    with pytest.raises(UsageError, match="1-based"):
        parse_bands("4,x")
    for bad in (
        lambda: parse_split("0.5,0.5"),
        lambda: parse_offset(""),
    ):
        with pytest.raises(PrepareError):
            bad()
    with pytest.raises(PrepareError, match="split"):
        PrepareOptions(split=(0.5, 0.5, 0.5))
    with pytest.raises(PrepareError, match="1-based"):
        PrepareOptions(bands=(0, 1, 2))


def test_assign_splits_blocks() -> None:
    sizes = {("t", r, c): 1 + (r * 7 + c) % 4 for r in range(6) for c in range(6)}
    total = sum(sizes.values())
    first = assign_splits(sizes, (0.8, 0.1, 0.1), seed=3)
    assert first == assign_splits(dict(reversed(sizes.items())), (0.8, 0.1, 0.1), seed=3)
    assert first != assign_splits(sizes, (0.8, 0.1, 0.1), seed=4)
    for split, fraction in zip(SPLITS, (0.8, 0.1, 0.1), strict=True):
        n = sum(sizes[k] for k, s in first.items() if s == split)
        assert abs(n - fraction * total) <= max(sizes.values())
    assert set(assign_splits(sizes, (1.0, 0.0, 0.0), seed=0).values()) == {"train"}
    assert set(assign_splits(sizes, (0.0, 0.0, 1.0), seed=0).values()) == {"test"}


# --- end to end --------------------------------------------------------------------------


def test_drop_reasons_counted(prepared: PrepareSummary) -> None:
    assert prepared.windows == ROWS * (COLS + 1)
    assert prepared.dropped == EXPECTED_DROPS
    assert sum(prepared.written.values()) == WRITTEN
    assert dict(prepared.unknown_codes) == {UNKNOWN_CODE: 9}
    names = set(split_of(prepared.out))
    dropped = {(6, 0), (6, 1), (1, 6), (2, 6), (5, 1), *((7, c) for c in range(4, 8))}
    expected = {(r, c) for r in range(ROWS) for c in range(COLS)} - dropped
    assert {row_col(n) for n in names} == expected
    assert all(n.startswith("S2_T35SLC_r") for n in names)
    assert not (prepared.out / ".staging").exists()


def test_masks_aligned_and_remapped(prepared: PrepareSummary) -> None:
    """Every mask equals the labels warped exactly onto its patch: alignment and remap."""
    seen_codes: set[int] = set()
    for name, split in split_of(prepared.out).items():
        row, col = row_col(name)
        mask = np.asarray(Image.open(prepared.out / split / "masks" / f"{name}.png").convert("RGB"))
        labels = ARAS400K.rgb_to_labels(mask)
        np.testing.assert_array_equal(labels, expected_classes(row, col), err_msg=name)
        seen_codes.add(base_code(row, col))
        # the river at a known easting lands in pixel columns 6..9 of patch column 3 only
        water_cols = np.flatnonzero((labels == 6).all(axis=0))
        if col == 3:
            assert water_cols.tolist() == [6, 7, 8, 9]
        elif (row, col) == (5, 2):
            assert water_cols.tolist() == list(range(3, P))
        else:
            assert not (labels == 6).any()
    assert seen_codes == set(BASE)  # every remapped code appears in some written patch


@pytest.mark.parametrize(("code", "cls"), [(90, 2), (100, 2), (95, 0), (70, 5), (10, 0), (80, 6)])
def test_remapped_patch_classes(prepared: PrepareSummary, code: int, cls: int) -> None:
    """A pixel away from the river and the special squares has its patch's base code."""
    splits = split_of(prepared.out)
    if code == 80:
        name = next(n for n in sorted(splits) if row_col(n)[1] == 3)
        pixel = (P // 2, 7)  # inside the river
    else:
        name = next(n for n in sorted(splits) if base_code(*row_col(n)) == code)
        pixel = (1, 1)
    mask = np.asarray(Image.open(prepared.out / splits[name] / "masks" / f"{name}.png"))
    assert tuple(mask[pixel]) == ARAS400K.colors[cls]


def test_images_scaled_and_band_selected(prepared: PrepareSummary) -> None:
    dn = image_dn()
    for name, split in split_of(prepared.out).items():
        row, col = row_col(name)
        image = np.asarray(Image.open(prepared.out / split / "images" / f"{name}.png"))
        window = dn[:, row * P : (row + 1) * P, col * P : (col + 1) * P]
        expected = np.stack([tci(window[b - 1]) for b in RGB_BANDS], axis=-1)
        np.testing.assert_array_equal(image, expected, err_msg=name)


def test_split_blocked_fractions_deterministic(
    prepared: PrepareSummary, scene: Scene, tmp_path: Path
) -> None:
    splits = split_of(prepared.out)
    blocks: dict[tuple[int, int], set[str]] = {}
    for name, split in splits.items():
        row, col = row_col(name)
        blocks.setdefault((row // BLOCK, col // BLOCK), set()).add(split)
    assert all(len(s) == 1 for s in blocks.values())  # neighbours in a block share a split
    assert len({next(iter(s)) for s in blocks.values()}) == 3
    for split, fraction in zip(SPLITS, FRACTIONS, strict=True):
        n = list(splits.values()).count(split)
        assert n == prepared.written[split]
        assert abs(n - fraction * WRITTEN) <= BLOCK * BLOCK
    again = prepare_dataset([scene.image], [scene.labels], tmp_path / "same", options())
    assert split_of(again.out) == splits
    other = prepare_dataset([scene.image], [scene.labels], tmp_path / "other", options(seed=1))
    assert split_of(other.out) != splits
    assert set(split_of(other.out)) == set(splits)


def test_summary_json(prepared: PrepareSummary, scene: Scene) -> None:
    data = json.loads((prepared.out / "prepare.json").read_text())
    assert data["windows"] == ROWS * (COLS + 1)
    assert data["written"] == {**prepared.written, "total": WRITTEN}
    assert data["dropped"] == {**EXPECTED_DROPS, "total": sum(EXPECTED_DROPS.values())}
    assert data["unknown_label_codes"] == {str(UNKNOWN_CODE): 9}
    assert data["options"]["bands"] == list(RGB_BANDS)
    assert data["options"]["image_format"] == "png"
    [image] = data["inputs"]["imagery"]
    assert image["path"] == str(scene.image) and image["crs"] == UTM
    assert image["offsets"] == [0, 0, 0] and image["grid"] == [ROWS, COLS + 1]
    assert image["descriptions"] == ["B02", "B03", "B04", "B08"]
    assert sorted(Path(x["path"]).name for x in data["inputs"]["labels"]) == [
        "wc_east.tif",
        "wc_west.tif",
    ]
    assert {x["crs"] for x in data["inputs"]["labels"]} == {GEO}
    for split in SPLITS:
        fractions = data["class_pixel_fractions"][split]
        assert list(fractions) == list(ARAS400K.names)
        assert sum(fractions.values()) == pytest.approx(1, abs=1e-5)
        assert sum(data["class_pixels"][split]) == prepared.written[split] * P * P
    assert data["remap"]["90"] == "Grass" and data["remap"]["70"] == "Barren"


def test_multiband_geotiff_patches(scene: Scene, tmp_path: Path) -> None:
    summary = prepare_dataset(
        [scene.image], [scene.labels], tmp_path / "out", options(bands=(1, 2, 3, 4))
    )
    splits = split_of(summary.out, ext="tif")
    assert len(splits) == WRITTEN
    dn = image_dn()
    for name in sorted(splits)[:5]:
        row, col = row_col(name)
        with rasterio.open(summary.out / splits[name] / "images" / f"{name}.tif") as ds:
            assert (ds.count, ds.dtypes[0], ds.crs.to_epsg()) == (4, "uint8", 32635)
            assert ds.transform == from_origin(X0 + col * P * RES, Y0 - row * P * RES, RES, RES)
            window = dn[:, row * P : (row + 1) * P, col * P : (col + 1) * P]
            np.testing.assert_array_equal(ds.read(), tci(window))


def test_reads_are_windowed(scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded: every read is one window no larger than one patch's footprint."""
    calls: list[tuple[str, Any]] = []
    for method in ("read", "read_masks"):
        original = getattr(DatasetReader, method)

        def wrapped(self: Any, *args: Any, _orig: Any = original, **kw: Any) -> Any:
            calls.append((Path(self.name).name, kw.get("window")))
            return _orig(self, *args, **kw)

        monkeypatch.setattr(DatasetReader, method, wrapped)
    prepare_dataset([scene.image], [scene.labels], tmp_path / "out", options())
    assert calls and all(window is not None for _, window in calls)
    image = [w for name, w in calls if name == scene.image.name]
    labels = [w for name, w in calls if name.startswith("wc_")]
    assert image and all(w.width <= P and w.height <= P for w in image)
    # a patch is 160 m: ≤ 160 / 4.27 + 2·1 margin + rounding label pixels across
    assert labels and all(w.width <= 42 and w.height <= 34 for w in labels)


# --- command line ------------------------------------------------------------------------


def test_cli_prepare(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["prepare", "--imagery", str(scene.image), "--labels", str(scene.labels), str(out)]
    args += ["--patch", str(P), "--bands", "3,2,1", "--split", "0.6,0.2,0.2", "--block", "2"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "dropped: mostly_water" in result.stdout and "prepare.json" in result.stdout
    data = json.loads((out / "prepare.json").read_text())
    assert data["written"]["total"] == WRITTEN
    assert data["dropped"]["label_unknown"] == 1


def aras400k(patch: NDArray[np.integer]) -> NDArray[np.uint8]:
    """ARAS400k's dataset_creator rule written out: uint8(patch / patch.max() * 255)."""
    return (patch.astype(np.float64) / patch.max() * 255).astype(np.uint8)


def test_aras400k_scaling_rule() -> None:
    patch = np.array([[[0, 100], [200, 400]], [[50, 300], [399, 1]]], np.uint16)
    expected = [[[0, 63], [127, 255]], [[31, 191], [254, 0]]]  # 100/400*255 = 63.75 → 63
    assert aras400k_uint8(patch).tolist() == expected
    assert aras400k(patch).tolist() == expected
    valid = np.array([[True, True], [True, False]])  # the 400 is no-data: the max is 399
    assert aras400k_uint8(patch, valid)[0].tolist() == [[0, 63], [127, 0]]
    assert not aras400k_uint8(np.zeros((3, 2, 2), np.uint16)).any()


@pytest.mark.parametrize("scaling", ["truecolor", "aras400k"])
def test_cli_prepare_scaling(scene: Scene, tmp_path: Path, scaling: str) -> None:
    out = tmp_path / scaling
    args = ["prepare", "--imagery", str(scene.image), "--labels", str(scene.labels), str(out)]
    args += ["--patch", str(P), "--bands", "3,2,1", "--block", "2", "--scaling", scaling]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "prepare.json").read_text())
    assert data["options"]["scaling"] == scaling
    assert ("patch.max()" in data["scaling"]) == (scaling == "aras400k")
    dn = image_dn()[[2, 1, 0]]
    names = split_of(out)
    assert len(names) == WRITTEN
    for name, split in names.items():
        r, c = row_col(name)
        patch = dn[:, r * P : (r + 1) * P, c * P : (c + 1) * P]
        expected = aras400k(patch) if scaling == "aras400k" else tci(patch)
        written = np.asarray(Image.open(out / split / "images" / f"{name}.png"))
        np.testing.assert_array_equal(written, expected.transpose(1, 2, 0))


@pytest.mark.parametrize("case", ["unreadable", "no_crs", "too_few_bands", "no_overlap"])
def test_cli_errors_name_the_file(scene: Scene, tmp_path: Path, case: str) -> None:
    image, labels = str(scene.image), str(scene.labels)
    if case == "unreadable":
        bad = tmp_path / "broken.tif"
        bad.write_text("not a raster")
        args = ["--imagery", str(bad), "--labels", labels]
    elif case == "no_crs":
        bad = write_image(tmp_path / "no_crs.tif", image_dn()[:, :32, :32], crs=None)
        args = ["--imagery", str(bad), "--labels", labels]
    elif case == "too_few_bands":
        bad = scene.image
        args = ["--imagery", image, "--labels", labels, "--bands", "5,3,2"]
    else:
        bad = scene.far_labels
        args = ["--imagery", image, "--labels", labels, "--labels", str(bad)]
    result = runner.invoke(cli.app, ["prepare", *args, str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], result.stderr
    assert not (tmp_path / "out").exists()  # inputs are checked before anything is written


def test_errors_before_writing(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "old.png").write_bytes(b"")
    with pytest.raises(DataError, match="not an empty directory"):
        prepare_dataset([scene.image], [scene.labels], out, options())
    with pytest.raises(DataError, match="no such file"):
        prepare_dataset([tmp_path / "missing.tif"], [scene.labels], tmp_path / "x", options())
    args = ["--imagery", str(scene.image), "--labels", str(scene.labels), "--split", "0.9,0.9,0.1"]
    result = runner.invoke(cli.app, ["prepare", *args, str(tmp_path / "y")])
    assert result.exit_code == 2 and "split" in result.stderr
