"""``lale areas``: areas per class of a class map, and of every class in every zone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box
from typer.testing import CliRunner

from lale import cli
from tests.classmaps import NAMES, write_class_map, write_zones

runner = CliRunner()

# 4 × 4 map of 10 m UTM pixels (origin 500000, 4500000); 255 = no-data.
MAP = np.array(
    [[0, 0, 1, 2], [0, 1, 1, 2], [255, 1, 2, 2], [0, 0, 255, 1]],
    dtype=np.uint8,
)
X0, Y0 = 500_000.0, 4_500_000.0
PIXEL_KM2 = 100 / 1e6


def _areas(*args: str) -> object:
    return runner.invoke(cli.app, ["areas", *args, "--no-progress"])


def _zones_json(out: Path, name: str = "map") -> dict[str, dict]:
    data = json.loads((out / f"{name}_zones.json").read_text())
    return {z["zone"]: z for z in data["zones"]}


def _km2(zone: dict) -> list[float]:
    return [c["km2"] for c in zone["classes"]]


def test_whole_map_areas_are_pixel_counts_times_pixel_area(tmp_path: Path) -> None:
    path = write_class_map(tmp_path / "map.tif", MAP)
    result = _areas(str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "map_areas.json").read_text())
    counts = np.bincount(MAP[MAP != 255], minlength=3)
    assert [c["km2"] for c in data["classes"]] == pytest.approx(counts * PIXEL_KM2)
    assert [c["percent"] for c in data["classes"]] == pytest.approx(100 * counts / counts.sum())
    assert data["nodata_pixels"] == 2 and data["area_method"] == "projected"
    rows = list(csv.DictReader((tmp_path / "out" / "map_areas.csv").open()))
    assert [r["class"] for r in rows] == list(NAMES)
    assert (tmp_path / "out" / "map_areas.png").read_bytes()[:4] == b"\x89PNG"


def test_zones_with_partial_pixels_weight_by_coverage(tmp_path: Path) -> None:
    path = write_class_map(tmp_path / "map.tif", MAP)
    left = box(X0, Y0 - 40, X0 + 20, Y0)  # columns 0-1, whole pixels
    half = box(X0 + 20, Y0 - 40, X0 + 25, Y0)  # left half of column 2
    outside = box(X0 + 1000, Y0 - 40, X0 + 1040, Y0)
    zones = write_zones(tmp_path / "z.gpkg", [left, half, outside], ["L", "H", "far"], "EPSG:32635")
    result = _areas(str(path), "--zones", str(zones), "--by", "name", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "'far'" in result.stderr and "zero area" in result.stderr
    z = _zones_json(tmp_path / "o")
    sub = MAP[:, :2]
    assert _km2(z["L"]) == pytest.approx(np.bincount(sub[sub != 255], minlength=3) * PIXEL_KM2)
    assert z["L"]["nodata_pixels"] == pytest.approx(1.0)
    col = MAP[:, 2]  # 1, 1, 2, nodata
    assert _km2(z["H"]) == pytest.approx(0.5 * np.bincount(col[col != 255], minlength=3) * 1e-4)
    assert z["H"]["nodata_pixels"] == pytest.approx(0.5)
    assert z["H"]["nodata_km2"] == pytest.approx(0.5 * PIXEL_KM2)
    assert [c["percent"] for c in z["H"]["classes"]] == pytest.approx([0, 100 * 2 / 3, 100 / 3])
    assert z["far"]["on_map"] is False and _km2(z["far"]) == [0, 0, 0]
    header = (tmp_path / "o" / "map_zones.csv").read_text().splitlines()[0]
    assert header.startswith("zone,valid_km2,nodata_km2,water km2")
    assert (tmp_path / "o" / "map_zones.png").is_file()


def test_zones_in_another_crs_are_reprojected_to_the_map(tmp_path: Path) -> None:
    import pyproj
    from shapely.geometry import Polygon

    path = write_class_map(tmp_path / "map.tif", MAP)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:32635", "EPSG:4326", always_xy=True)
    corners = [(X0, Y0), (X0 + 20, Y0), (X0 + 20, Y0 - 40), (X0, Y0 - 40)]
    lonlat = Polygon([to_lonlat.transform(x, y) for x, y in corners])
    zones = write_zones(tmp_path / "z.geojson", [lonlat], ["L"], "EPSG:4326")
    result = _areas(str(path), "--zones", str(zones), "--by", "name", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    sub = MAP[:, :2]
    expected = np.bincount(sub[sub != 255], minlength=3) * PIXEL_KM2
    assert _km2(_zones_json(tmp_path / "o")["L"]) == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_geographic_map_areas_match_the_area_table(tmp_path: Path) -> None:
    from rasterio.crs import CRS

    from lale.inference.areas import AreaCounter, row_areas_km2

    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, (40, 30), dtype=np.uint8)
    classes[:3, :5] = 255
    transform = Affine(0.01, 0, 10.0, 0, -0.01, 60.0)  # 0.01° pixels around 60° N
    path = write_class_map(tmp_path / "geo.tif", classes, crs="EPSG:4326", transform=transform)
    row_km2, _ = row_areas_km2(CRS.from_epsg(4326), transform, 40, 30)
    counter = AreaCounter(3, row_km2)
    counter.add(0, classes)
    expected = counter.table(NAMES, "geodesic")
    whole = box(9.9, 59.5, 10.4, 60.1)  # larger than the map
    top = box(10.0, 59.9, 10.3, 60.0)  # the first 10 rows
    zones = write_zones(tmp_path / "z.gpkg", [whole, top], ["all", "top"], "EPSG:4326")
    out = tmp_path / "o"
    assert _areas(str(path), "--out", str(out)).exit_code == 0
    data = json.loads((out / "geo_areas.json").read_text())
    assert [c["km2"] for c in data["classes"]] == pytest.approx(expected.km2, rel=1e-12)
    result = _areas(str(path), "--zones", str(zones), "--by", "name", "--out", str(out))
    assert result.exit_code == 0, result.output
    z = _zones_json(out, "geo")
    assert _km2(z["all"]) == pytest.approx(expected.km2, rel=1e-9)
    top_counter = AreaCounter(3, row_km2)
    top_counter.add(0, classes[:10])
    assert _km2(z["top"]) == pytest.approx(top_counter.km2, rel=1e-6)
    assert z["all"]["nodata_pixels"] == pytest.approx(15)


def test_map_with_a_colour_table_and_no_tag_names_classes_by_index(tmp_path: Path) -> None:
    path = write_class_map(tmp_path / "map.tif", MAP, names=None)
    result = _areas(str(path), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "named by index" in result.stderr
    data = json.loads((tmp_path / "o" / "map_areas.json").read_text())
    assert [c["class"] for c in data["classes"]] == ["class 0", "class 1", "class 2"]


@pytest.mark.parametrize("problem", ["no-field", "not-vector", "map-no-crs", "no-tag-no-table"])
def test_bad_inputs_fail_with_one_line_naming_the_file(tmp_path: Path, problem: str) -> None:
    crs = None if problem == "map-no-crs" else "EPSG:32635"
    names, colours = (None, None) if problem == "no-tag-no-table" else (NAMES, ((0, 0, 0),) * 3)
    path = write_class_map(tmp_path / "map.tif", MAP, crs=crs, names=names, colours=colours)
    zones = write_zones(tmp_path / "z.gpkg", [box(X0, Y0 - 10, X0 + 10, Y0)], ["a"], "EPSG:32635")
    if problem == "not-vector":
        zones = tmp_path / "z.txt"
        zones.write_text("not a vector file\n")
    by = "district" if problem == "no-field" else "name"
    out = tmp_path / "o"
    result = _areas(str(path), "--zones", str(zones), "--by", by, "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    named = path if problem == "no-tag-no-table" else zones
    assert str(named) in lines[0]
    assert not any(p.name.startswith("map_") for p in out.iterdir())


def test_zone_chart_shows_the_top_largest_zones(tmp_path: Path, monkeypatch) -> None:
    from lale.maps import figures

    shown: list[list[str]] = []
    monkeypatch.setattr(
        figures, "_save", lambda fig, path: shown.append(
            [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ) or path.write_bytes(b"png"),
    )  # fmt: skip
    path = write_class_map(tmp_path / "map.tif", MAP)
    small, big = box(X0, Y0 - 10, X0 + 10, Y0), box(X0, Y0 - 40, X0 + 40, Y0)
    middle = box(X0, Y0 - 20, X0 + 20, Y0)
    zones = write_zones(tmp_path / "z.gpkg", [small, big, middle], ["s", "b", "m"], "EPSG:32635")
    args = [str(path), "--zones", str(zones), "--by", "name", "--top", "2"]
    result = _areas(*args, "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert shown == [["b", "m"]]


def test_map_and_zones_without_crs_give_coverage_weighted_pixels(tmp_path: Path) -> None:
    path = write_class_map(tmp_path / "map.tif", MAP, crs=None)
    zones = write_zones(tmp_path / "z.gpkg", [box(X0, Y0 - 40, X0 + 15, Y0)], ["a"], None)
    result = _areas(str(path), "--zones", str(zones), "--by", "name", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    zone = _zones_json(tmp_path / "o")["a"]
    sub = MAP[:, :2]
    weights = np.where(np.arange(2) == 0, 1.0, 0.5)[None].repeat(4, axis=0)
    expected = [weights[sub == k].sum() for k in range(3)]
    assert [c["pixels"] for c in zone["classes"]] == pytest.approx(expected)
    assert "km2" not in zone["classes"][0] and zone["valid_km2"] is None
    header = (tmp_path / "o" / "map_zones.csv").read_text().splitlines()[0]
    assert header.startswith("zone,valid_pixels,nodata_pixels,water pixels")
