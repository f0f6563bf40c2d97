"""``lale change``: transition matrix, gains and losses, and the change raster of two maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from lale import cli
from tests.classmaps import NAMES, write_class_map
from tests.rasters import UTM_10M

runner = CliRunner()
PIXEL_KM2 = 100 / 1e6


def _change(a: Path, b: Path, out: Path) -> object:
    return runner.invoke(cli.app, ["change", str(a), str(b), "--out", str(out), "--no-progress"])


def _maps(seed: int = 0, shape: tuple[int, int] = (12, 10)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, shape).astype(np.uint8)
    b = np.where(rng.random(shape) < 0.3, rng.integers(0, 3, shape), a).astype(np.uint8)
    a[0, :4] = 255
    b[1, :3] = 255
    b[0, 0] = 255
    return a, b


def _expected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    valid = (a != 255) & (b != 255)
    m = np.zeros((3, 3), dtype=np.int64)
    np.add.at(m, (a[valid], b[valid]), 1)
    return m


def test_transition_matrix_gains_losses_and_raster_match_numpy(tmp_path: Path) -> None:
    a, b = _maps()
    pa, pb = write_class_map(tmp_path / "a.tif", a), write_class_map(tmp_path / "b.tif", b)
    out = tmp_path / "out"
    result = _change(pa, pb, out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "change.json").read_text())
    m = _expected(a, b)
    assert np.array(data["matrix_pixels"]).tolist() == m.tolist()
    assert np.allclose(data["matrix"], m * PIXEL_KM2, rtol=1e-12, atol=0)
    assert data["nodata_pixels"] == {"a_only": 3, "b_only": 3, "both": 1}
    assert data["b_resampled_to_a_grid"] is False
    for row in data["per_class"]:
        k = row["index"]
        gains = (m[:, k].sum() - m[k, k]) * PIXEL_KM2
        losses = (m[k].sum() - m[k, k]) * PIXEL_KM2
        assert row["gains"] == pytest.approx(gains) and row["losses"] == pytest.approx(losses)
        assert row["net"] == pytest.approx(gains - losses)
    lines = (out / "change_matrix.csv").read_text().splitlines()
    assert lines[0] == "from \\ to (km2)," + ",".join(NAMES) and len(lines) == 4
    with rasterio.open(out / "change.tif") as src:
        code = src.read(1)
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.colormap(1)[3 * 0 + 1][:3] == (0, 128, 0)  # water → forest: forest's colour
        assert src.crs == rasterio.crs.CRS.from_epsg(32635) and src.transform == UTM_10M
    valid = (a != 255) & (b != 255)
    assert np.array_equal(code, np.where(valid, a.astype(int) * 3 + b, 255))
    for picture in ("change_legend.png", "change_heatmap.png"):
        assert (out / picture).read_bytes()[:4] == b"\x89PNG"


def test_b_on_another_grid_is_resampled_by_nearest(tmp_path: Path) -> None:
    a, _ = _maps(1, (6, 8))
    fine = np.random.default_rng(2).integers(0, 3, (13, 15)).astype(np.uint8)
    # B: 5 m pixels, its origin 2.5 m up-left of A's, shifted one A pixel east: A's pixel (r, c)
    # centre falls in the middle of B's pixel (2r + 1, 2c - 1); A's column 0 lies west of B.
    x0, y0 = UTM_10M.c, UTM_10M.f
    fine_t = Affine(5, 0, x0 - 2.5 + 10, 0, -5, y0 + 2.5)
    pa = write_class_map(tmp_path / "a.tif", a)
    pb = write_class_map(tmp_path / "b.tif", fine, transform=fine_t)
    out = tmp_path / "out"
    result = _change(pa, pb, out)
    assert result.exit_code == 0, result.output
    on_a = np.full(a.shape, 255, dtype=np.uint8)
    on_a[:, 1:] = fine[1::2, 1::2][:6, :7]
    data = json.loads((out / "change.json").read_text())
    assert data["b_resampled_to_a_grid"] is True
    assert data["matrix_pixels"] == _expected(a, on_a).tolist()
    nodata_a = int((a[:, 0] == 255).sum())
    assert data["nodata_pixels"]["b_only"] == 6 - nodata_a
    assert data["nodata_pixels"]["both"] == nodata_a
    assert "resampled" in result.output


def test_geographic_pair_areas_sum_to_the_area_table(tmp_path: Path) -> None:
    from rasterio.crs import CRS

    from lale.inference.areas import AreaCounter, row_areas_km2

    a, b = _maps(3, (20, 16))
    t = Affine(0.01, 0, 20.0, 0, -0.01, -5.0)
    pa = write_class_map(tmp_path / "a.tif", a, crs="EPSG:4326", transform=t)
    pb = write_class_map(tmp_path / "b.tif", b, crs="EPSG:4326", transform=t)
    result = _change(pa, pb, tmp_path / "o")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o" / "change.json").read_text())
    counter = AreaCounter(3, row_areas_km2(CRS.from_epsg(4326), t, 20, 16)[0])
    counter.add(0, np.where(b == 255, 255, a).astype(np.uint8))
    assert np.sum(data["matrix"], axis=1) == pytest.approx(counter.km2, rel=1e-12)


def test_class_list_mismatch_is_one_line(tmp_path: Path) -> None:
    a, b = _maps()
    pa = write_class_map(tmp_path / "a.tif", a)
    pb = write_class_map(tmp_path / "b.tif", b, names=("water", "trees", "crop"))
    result = _change(pa, pb, tmp_path / "o")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(pb) in lines[0] and "differ" in lines[0]


def test_a_failure_after_the_raster_leaves_no_output(tmp_path: Path) -> None:
    a, b = _maps()
    b[5, 5] = 7  # neither a class nor no-data: found once the whole map is read
    pa, pb = write_class_map(tmp_path / "a.tif", a), write_class_map(tmp_path / "b.tif", b)
    out = tmp_path / "out"
    out.mkdir()
    (out / "change.json").write_text("previous\n")
    result = _change(pa, pb, out)
    assert result.exit_code == 2 and "value 7" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["change.json"]
    assert (out / "change.json").read_text() == "previous\n"


def test_output_folder_is_checked_before_work(tmp_path: Path) -> None:
    a, b = _maps()
    pa, pb = write_class_map(tmp_path / "a.tif", a), write_class_map(tmp_path / "b.tif", b)
    (tmp_path / "file").write_text("x")
    result = _change(pa, pb, tmp_path / "file")
    assert result.exit_code == 2 and "cannot write output here" in result.stderr


def test_more_than_fifteen_classes_give_a_uint16_change_raster(tmp_path: Path) -> None:
    names = tuple(f"c{k}" for k in range(16))
    rng = np.random.default_rng(4)
    a, b = (rng.integers(0, 16, (6, 7)).astype(np.uint8) for _ in range(2))
    b[0, 0] = 255
    pa = write_class_map(tmp_path / "a.tif", a, names=names, colours=None)
    pb = write_class_map(tmp_path / "b.tif", b, names=names, colours=None)
    result = _change(pa, pb, tmp_path / "o")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "o" / "change.tif") as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 65535
        code = src.read(1)
    assert code[0, 0] == 65535
    assert np.array_equal(code[b != 255], a[b != 255].astype(int) * 16 + b[b != 255])
