"""Map products of ``lale predict``: COG rasters, uint8 probabilities and polygons (--vector)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import shapely
from affine import Affine
from numpy.typing import NDArray
from PIL import Image
from rasters import write_geotiff
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from lale.cli import app
from lale.data.schema import ARAS400K
from lale.data.synthetic.noise import smooth_field
from lale.inference.areas import AreaCounter, row_areas_km2
from lale.inference.row_products import row_products
from lale.inference.vector_options import VectorOptions, parse_min_area
from lale.inference.vectorize import vectorize_class_map

UTM = Affine(10, 0, 500_000, 0, -10, 4_500_000)
GEO = Affine(1e-4, 0, -60.0, 0, -1e-4, -3.0)  # ≈ 11 m pixels near the equator
FAST = ["--tile", "128", "--overlap", "32", "--batch-size", "4", "--no-progress"]


def blobby_classes(h: int, w: int, k: int = 5, seed: int = 0) -> NDArray[np.uint8]:
    """Land-cover-like class map: smooth noise cut at quantiles, a no-data corner."""
    field = smooth_field(np.random.default_rng(seed), max(h, w), 12)[:h, :w]
    classes = np.digitize(field, np.quantile(field, np.linspace(0, 1, k + 1)[1:-1]))
    classes = classes.astype(np.uint8)
    classes[:40, :60] = 255
    return classes


def rgb_scene(
    path: Path, h: int = 420, w: int = 380, transform: Affine = UTM, crs: str = "EPSG:32635"
) -> Path:
    """A multi-kilometre 8-bit RGB GeoTIFF of blobby cover (its display colours) with no-data 0."""
    classes = blobby_classes(h, w, 7)
    colours = np.array([*ARAS400K.display_colors, *[(0, 0, 0)] * (256 - 7)], dtype=np.uint8)
    rgb = colours[classes].transpose(2, 0, 1)
    rgb = np.clip(
        rgb.astype(np.int16) + np.random.default_rng(1).integers(-9, 9, rgb.shape), 1, 255
    )
    rgb = rgb.astype(np.uint8)
    rgb[:, classes == 255] = 0
    return write_geotiff(path, rgb, crs=crs, transform=transform, nodata=0)


def layer(path: Path) -> tuple[dict[str, Any], NDArray[Any], dict[str, NDArray[Any]]]:
    meta, _, wkb, fields = pyogrio.raw.read(path)
    return meta, shapely.from_wkb(wkb), dict(zip(meta["fields"], fields, strict=True))


def class_area_m2(fields: dict[str, NDArray[Any]], k: int) -> float:
    return float(fields["area_m2"][fields["class"] == k].sum())


def predict(run_dir: Path, scene: Path, out: Path, *extra: str) -> Any:
    args = ["predict", "--run", str(run_dir), "--out", str(out), *FAST, *extra, str(scene)]
    return CliRunner().invoke(app, args)


@pytest.mark.usefixtures("one_thread")
def test_predict_writes_valid_cogs_and_a_polygon_layer_matching_the_areas(
    tmp_path: Path, run_dir: Path
) -> None:
    scene = rgb_scene(tmp_path / "scene.tif", 620, 560)  # 6.2 × 5.6 km at 10 m
    res = predict(run_dir, scene, tmp_path / "out", "--probabilities", "--vector", "gpkg")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"scene_{k}"
        for k in (
            *("classes.tif", "confidence.tif", "probabilities.tif", "preview.png"),
            *("classes.gpkg", "areas.csv", "areas.json"),
        )
    )
    for kind in ("classes", "confidence", "probabilities"):
        valid, errors, _ = cog_validate(out / f"scene_{kind}.tif")
        assert valid, (kind, errors)
    with rasterio.open(out / "scene_classes.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.overviews(1) == [2, 4]
        assert src.nodata == 255 and src.colormap(1)[0][:3] == ARAS400K.display_colors[0]
        assert json.loads(src.tags()["classes"]) == list(ARAS400K.names)
        classes = src.read(1)
        overview = src.read(1, out_shape=(310, 280))  # mode: only class values, no blends
    assert set(np.unique(overview)) <= set(np.unique(classes))
    with rasterio.open(out / "scene_probabilities.tif") as src:
        assert src.count == 7 and src.descriptions == tuple(ARAS400K.names)
        assert src.scales == (1 / 255,) * 7 and src.tags()["scale"] == "1/255"
        probs, mask = src.read(), src.dataset_mask()
    np.testing.assert_array_equal(mask > 0, classes != 255)
    assert (np.abs(probs.sum(axis=0, dtype=np.int32)[classes != 255] - 255) <= 4).all()
    meta, geoms, fields = layer(out / "scene_classes.gpkg")
    assert list(meta["fields"]) == ["class", "name", "area_m2"] and meta["crs"] == "EPSG:32635"
    assert meta["geometry_type"] == "Polygon" and shapely.is_valid(geoms).all()
    assert {str(n) for n in fields["name"]} <= set(ARAS400K.names)
    np.testing.assert_allclose(fields["area_m2"], shapely.area(geoms))  # 1 m CRS unit
    table = json.loads((out / "scene_areas.json").read_text())
    for row in table["classes"]:
        assert math.isclose(class_area_m2(fields, row["index"]), row["km2"] * 1e6, rel_tol=1e-9)
    assert len(geoms) > 1


@pytest.mark.usefixtures("one_thread")
def test_geodesic_polygon_areas_match_the_table(tmp_path: Path, run_dir: Path) -> None:
    scene = rgb_scene(tmp_path / "geo.tif", 300, 280, GEO, "EPSG:4326")
    for extra in ([], ["--simplify", "1e-4"]):
        out = tmp_path / f"out{len(extra)}"
        res = predict(run_dir, scene, out, "--vector", "geojson", *extra)
        assert res.exit_code == 0, res.output
        _, geoms, fields = layer(out / "geo_classes.geojson")
        assert shapely.is_valid(geoms).all() and len(geoms) > 100
        table = json.loads((out / "geo_areas.json").read_text())
        assert table["area_method"] == "geodesic"
        if not extra:  # geodesic polygons of pixel outlines = the table's ellipsoidal rows
            for row in table["classes"]:
                got = class_area_m2(fields, row["index"])
                assert math.isclose(got, row["km2"] * 1e6, rel_tol=1e-4), row
        total = sum(r["km2"] for r in table["classes"]) * 1e6
        assert math.isclose(float(fields["area_m2"].sum()), total, rel_tol=5e-3)


def write_class_map(path: Path, classes: NDArray[np.uint8], transform: Affine, crs: str) -> Path:
    return write_geotiff(path, classes[None], crs=crs, transform=transform, nodata=255)


@pytest.mark.parametrize(("transform", "crs"), [(UTM, "EPSG:32635"), (GEO, "EPSG:4326")])
def test_block_wise_polygons_equal_whole_map_polygons(
    tmp_path: Path, transform: Affine, crs: str
) -> None:
    classes = blobby_classes(300, 260)
    src = write_class_map(tmp_path / "c.tif", classes, transform, crs)
    names = [f"c{k}" for k in range(5)]
    km2, _ = row_areas_km2(rasterio.crs.CRS.from_string(crs), transform, 300, 260)
    counter = AreaCounter(5, km2)
    counter.add(0, classes)
    results = {}
    for rows in (23, 1000):
        target = tmp_path / f"v{rows}.gpkg"
        summary = vectorize_class_map(src, target, names, VectorOptions("gpkg", block_rows=rows))
        _, geoms, fields = layer(target)
        assert summary.features == len(geoms)
        pairs = zip(fields["class"].tolist(), shapely.area(geoms).tolist(), strict=True)
        results[rows] = (sorted(pairs), geoms)
        for k in range(5):
            assert math.isclose(class_area_m2(fields, k), counter.km2[k] * 1e6, rel_tol=1e-6)
    # The same regions, none split at the 12 band seams: one feature per region.
    assert len(results[23][1]) == len(results[1000][1])
    np.testing.assert_allclose(np.array(results[23][0]), np.array(results[1000][0]))
    # Simplified by 1.5 pixels, by blocks: valid, and each class's area within 0.5 %.
    tolerance = 1.5 * transform.a
    target = tmp_path / "simple.gpkg"
    vectorize_class_map(
        src, target, names, VectorOptions("gpkg", simplify=tolerance, block_rows=23)
    )
    _, geoms, fields = layer(target)
    assert shapely.is_valid(geoms).all() and len(geoms) == len(results[23][1])
    for k in range(5):
        assert math.isclose(class_area_m2(fields, k), counter.km2[k] * 1e6, rel_tol=5e-3)


def test_sieve_and_simplify_by_blocks(tmp_path: Path) -> None:
    classes = blobby_classes(260, 240)
    rng = np.random.default_rng(3)
    specks = rng.integers(40, 220, (2, 60))
    classes[specks[0], specks[1]] = (classes[specks[0], specks[1]] + 1) % 5  # 1-pixel regions
    src = write_class_map(tmp_path / "c.tif", classes, UTM, "EPSG:32635")
    names = [f"c{k}" for k in range(5)]
    counts, areas = {}, {}
    for rows in (17, 1000):
        for name, opts in {
            "plain": VectorOptions(block_rows=rows),
            "sieved": VectorOptions(min_area=400, min_area_unit="m2", block_rows=rows),
            "simple": VectorOptions(simplify=15.0, block_rows=rows),
        }.items():
            target = tmp_path / f"{name}{rows}.gpkg"
            summary = vectorize_class_map(src, target, names, opts)
            _, geoms, fields = layer(target)
            counts[name, rows] = len(geoms)
            areas[name, rows] = [class_area_m2(fields, k) for k in range(5)]
            if name == "sieved":  # 400 m² = 4 px: no region under 4 px is left
                assert fields["area_m2"].min() >= 400
            if name == "simple":
                assert shapely.is_valid(geoms).all() and summary.features == len(geoms)
    assert counts["sieved", 17] == counts["sieved", 1000] < counts["plain", 17] - 50
    assert counts["simple", 17] == counts["plain", 17] == counts["plain", 1000]
    for rows in (17, 1000):
        np.testing.assert_allclose(areas["simple", rows], areas["plain", rows], rtol=5e-3)
        np.testing.assert_allclose(areas["sieved", rows], areas["plain", rows], rtol=5e-3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vector", "shp"], "Invalid value"),
        (["--vector", "gpkg", "--min-area", "5ha"], "--min-area must be a number"),
        (["--vector", "gpkg", "--min-area", "-4px"], "--min-area must be a number"),
        (["--vector", "gpkg", "--simplify", "0"], "--simplify must be a positive"),
        (["--min-area", "4px"], "need --vector"),
        (["--simplify", "10"], "need --vector"),
    ],
)
def test_bad_vector_options_exit_2(
    tmp_path: Path, run_dir: Path, extra: list[str], message: str
) -> None:
    res = predict(run_dir, tmp_path / "x.tif", tmp_path / "out", *extra)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_parse_min_area() -> None:
    assert parse_min_area("500m2") == (500.0, "m2") and parse_min_area("4 px") == (4.0, "px")
    assert parse_min_area("1.5e3m²") == (1500.0, "m2") and parse_min_area(None) == (0.0, "px")


@pytest.mark.usefixtures("one_thread")
def test_failed_vectorisation_leaves_no_outputs(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lale.inference.vectorize as vectorize

    def broken(source: Path, target: Path, *args: Any) -> None:
        target.write_bytes(b"half a layer")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vectorize, "vectorize_class_map", broken)
    scene = rgb_scene(tmp_path / "scene.tif", 200, 180)
    res = predict(run_dir, scene, tmp_path / "out", "--probabilities", "--vector", "gpkg")
    assert res.exit_code == 1 and "No space left on device" in res.output
    assert list((tmp_path / "out").iterdir()) == []  # no final name, no temporary file


@pytest.mark.usefixtures("one_thread")
def test_pictures_refuse_vector_and_get_unreferenced_probabilities(
    tmp_path: Path, run_dir: Path
) -> None:
    Image.fromarray(np.full((60, 70, 3), 90, np.uint8)).save(tmp_path / "pic.png")
    res = predict(run_dir, tmp_path / "pic.png", tmp_path / "a", "--vector", "gpkg")
    assert (
        res.exit_code == 1 and "pic.png: has no CRS; --vector needs a georeferenced" in res.output
    )
    assert not list((tmp_path / "a").glob("*"))
    res = predict(run_dir, tmp_path / "pic.png", tmp_path / "b", "--probabilities")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "pic_areas.csv",
        "pic_areas.json",
        "pic_classes.png",
        "pic_confidence.png",
        "pic_probabilities.tif",
    ]
    with rasterio.open(tmp_path / "b" / "pic_probabilities.tif") as src:
        assert src.crs is None and src.count == 7 and cog_validate(src.name)[0]
    res = predict(run_dir, tmp_path / "pic.png", tmp_path / "c", "--confidence")
    assert res.exit_code == 0 and (tmp_path / "c" / "pic_confidence.png").is_file()
    assert not (tmp_path / "c" / "pic_probabilities.tif").exists()


def test_row_products_match_a_float64_softmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (6, 9, 11)).astype(np.float32)
    logits[:, 0, 0] = 1.0  # a tie: the first class wins, as argmax
    valid = rng.random((9, 11)) > 0.2
    rows = row_products(logits, valid, confidence=True, probabilities=True)
    soft = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    assert rows.confidence is not None and rows.probabilities is not None
    np.testing.assert_array_equal(rows.classes[valid], logits.argmax(0)[valid])
    assert (rows.classes[~valid] == 255).all() and (rows.confidence[~valid] == 0).all()
    assert np.abs(rows.probabilities[:, valid] - 255 * soft[:, valid]).max() <= 0.5 + 1e-4
    assert (rows.probabilities[:, ~valid] == 0).all()
    conf = np.clip(np.rint(255 * soft.max(0)), 1, 255)
    assert np.abs(rows.confidence[valid] - conf[valid]).max() <= 1
