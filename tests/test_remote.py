"""Remote rasters and STAC items through ``lale predict``, read from a real HTTP server.

The server (tests/http_server.py) runs on localhost and honours Range requests; nothing is
mocked: GDAL fetches the windows it needs over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from http_server import serve
from rasterio.warp import transform_bounds
from rasters import UTM_10M, write_geotiff
from typer.testing import CliRunner

from lale.cli import app

runner = CliRunner()


def _cog(path: Path, data: np.ndarray) -> Path:
    return write_geotiff(path, data, driver="COG", blocksize=256)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    _cog(root / "scene.tif", rng.integers(0, 255, (3, 3072, 3072), dtype=np.uint8))
    return root


def _predict(run_dir: Path, out: Path, *args: str) -> object:
    return runner.invoke(
        app, ["predict", *args, "--run", str(run_dir), "--out", str(out), "--no-progress"]
    )


def _same_map(a: Path, b: Path) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert x.transform == y.transform
        np.testing.assert_array_equal(x.read(), y.read())


def _box(path: Path, rows: tuple[int, int], cols: tuple[int, int]) -> str:
    with rasterio.open(path) as src:
        bounds = src.window_bounds((rows, cols))
        return ",".join(f"{v:.9f}" for v in transform_bounds(src.crs, "EPSG:4326", *bounds))


def test_remote_window_fetches_a_fraction_and_matches_the_local_file(
    run_dir: Path, served: Path, tmp_path: Path
) -> None:
    box = _box(served / "scene.tif", (512, 768), (512, 768))
    with serve(served) as server:
        remote = _predict(run_dir, tmp_path / "remote", f"{server.url}/scene.tif", "--bbox", box)
        fetched = server.bytes_sent
    assert remote.exit_code == 0, remote.output
    local = _predict(run_dir, tmp_path / "local", str(served / "scene.tif"), "--bbox", box)
    assert local.exit_code == 0, local.output
    size = (served / "scene.tif").stat().st_size
    assert 0 < fetched < size / 8, (fetched, size)
    with (
        rasterio.open(tmp_path / "remote" / "scene_classes.tif") as a,
        rasterio.open(tmp_path / "local" / "scene_classes.tif") as b,
    ):
        assert 256 <= a.width <= 270 and a.transform == b.transform
        np.testing.assert_array_equal(a.read(), b.read())
    info = json.loads((tmp_path / "remote" / "scene_areas.json").read_text())
    assert info["input"] == f"{server.url}/scene.tif" and info["bbox_crs"] == "EPSG:4326"


def test_remote_failures_are_one_line_each_and_the_others_complete(
    run_dir: Path, served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    with serve(served) as server:
        server.statuses["/denied.tif"] = 403
        server.hang.add("/slow.tif")
        box = _box(served / "scene.tif", (0, 256), (0, 256))
        urls = [f"{server.url}/{n}" for n in ("missing.tif", "denied.tif", "slow.tif")]
        result = _predict(run_dir, tmp_path, *urls, f"{server.url}/scene.tif", "--bbox", box)
    assert result.exit_code == 1
    out = result.output
    assert f"{server.url}/missing.tif: not found (HTTP 404)" in out
    assert f"{server.url}/denied.tif: access denied" in out
    assert f"{server.url}/slow.tif: " in out
    assert "Traceback" not in out and "3 of 4 inputs failed" in out
    assert (tmp_path / "scene_classes.tif").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("scene_")) == []


def test_skip_existing_does_not_touch_the_server(
    run_dir: Path, served: Path, tmp_path: Path
) -> None:
    box = _box(served / "scene.tif", (0, 256), (0, 256))
    with serve(served) as server:
        url = f"{server.url}/scene.tif"
        assert _predict(run_dir, tmp_path, url, "--bbox", box).exit_code == 0
        server.reset()
        again = _predict(run_dir, tmp_path, url, "--bbox", box, "--skip-existing")
        assert again.exit_code == 0 and "skipped, outputs complete" in again.output
        assert server.requests == 0


def test_bbox_outside_the_scene_or_without_crs_is_one_line(
    run_dir: Path, served: Path, tmp_path: Path
) -> None:
    far = _predict(run_dir, tmp_path, str(served / "scene.tif"), "--bbox", "100,10,100.1,10.1")
    assert far.exit_code == 1 and "lies outside it" in far.output
    bad = _predict(run_dir, tmp_path, str(served / "scene.tif"), "--bbox", "1,2,3")
    assert bad.exit_code == 2 and "give four numbers" in bad.output
    flipped = _predict(run_dir, tmp_path, str(served / "scene.tif"), "--bbox", "3,2,1,4")
    assert flipped.exit_code == 2 and "west < east" in flipped.output


def _item(root: Path, item_id: str, coarse_blue: bool) -> dict[str, object]:
    """A Sentinel-2-like item: red, green, blue as 10 m (blue 20 m if asked) COGs, DN + offset."""
    rng = np.random.default_rng(1)
    bands = {}
    for key, name in (("red", "B04"), ("green", "B03"), ("blue", "B02")):
        n, step = (256, 20) if coarse_blue and key == "blue" else (512, 10)
        transform = UTM_10M @ UTM_10M.scale(step / 10)
        data = rng.integers(1000, 4000, (1, n, n), dtype=np.uint16)
        write_geotiff(root / f"{item_id}_{name}.tif", data, transform=transform, driver="COG")
        bands[key] = {
            "href": f"{item_id}_{name}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "eo:bands": [{"name": name, "common_name": key}],
            "raster:bands": [{"scale": 0.0001, "offset": -0.1}],
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"},
        "links": [],
        "assets": {"b4": bands["red"], "b3": bands["green"], "b2": bands["blue"]},
    }


def test_stac_item_bands_by_common_name_match_the_stacked_file(
    run_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "served"
    root.mkdir()
    (root / "item.json").write_text(json.dumps(_item(root, "S2_A", coarse_blue=False)))
    stacked = np.concatenate(
        [rasterio.open(root / f"S2_A_{b}.tif").read() for b in ("B04", "B03", "B02")]
    )
    write_geotiff(tmp_path / "S2_A.tif", stacked, tags={"BOA_ADD_OFFSET": -1000})
    with serve(root) as server:
        args = ["--stac", f"{server.url}/item.json", "--assets", "red,green,blue"]
        result = _predict(run_dir, tmp_path / "stac", *args)
    assert result.exit_code == 0, result.output
    local = _predict(run_dir, tmp_path / "local", str(tmp_path / "S2_A.tif"))
    assert local.exit_code == 0, local.output
    _same_map(tmp_path / "stac" / "S2_A_classes.tif", tmp_path / "local" / "S2_A_classes.tif")
    with rasterio.open(tmp_path / "stac" / "S2_A_classes.tif") as a:
        assert a.tags()["stac_item"] == "S2_A"
        assert a.tags()["datetime"] == "2024-06-01T10:00:00Z"
        assert a.tags()["stac_bands"] == "b4[1], b3[1], b2[1]"


def test_stac_collection_resamples_coarse_bands_and_names_outputs_by_id(
    run_dir: Path, tmp_path: Path
) -> None:
    items = [_item(tmp_path, "S2_B", coarse_blue=True), _item(tmp_path, "S2_C", False)]
    collection = tmp_path / "search.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    result = _predict(
        run_dir, tmp_path / "out", "--stac", str(collection), "--assets", "red,green,blue"
    )
    assert result.exit_code == 0, result.output
    for item_id in ("S2_B", "S2_C"):
        with rasterio.open(tmp_path / "out" / f"{item_id}_classes.tif") as src:
            assert (src.width, src.height, src.res) == (512, 512, (10.0, 10.0))


def test_stac_asset_visual_and_bad_items_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    _cog(tmp_path / "tci.tif", rng.integers(0, 255, (3, 300, 300), dtype=np.uint8))
    item = {
        "type": "Feature",
        "id": "V1",
        "properties": {"datetime": None},
        "assets": {"visual": {"href": "tci.tif", "type": "image/tiff"}},
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    stac = str(tmp_path / "item.json")
    whole = _predict(run_dir, tmp_path / "out", "--stac", stac, "--asset", "visual")
    assert whole.exit_code == 0, whole.output
    plain = _predict(run_dir, tmp_path / "plain", str(tmp_path / "tci.tif"))
    assert plain.exit_code == 0, plain.output
    _same_map(tmp_path / "out" / "V1_classes.tif", tmp_path / "plain" / "tci_classes.tif")
    missing = _predict(run_dir, tmp_path / "o2", "--stac", stac, "--assets", "red,nir")
    assert missing.exit_code == 2
    assert f"{stac}#V1: no asset or band named 'red' (assets: visual" in missing.output
    (tmp_path / "not.json").write_text('{"type": "Catalog"}')
    other = _predict(run_dir, tmp_path / "o3", "--stac", str(tmp_path / "not.json"), "--asset", "x")
    assert other.exit_code == 2 and "not a STAC Item, ItemCollection" in other.output
    lone = _predict(run_dir, tmp_path / "o4", str(tmp_path / "tci.tif"), "--asset", "visual")
    assert lone.exit_code == 2 and "pick the bands of --stac items" in lone.output
    for result in (missing, other, lone):
        assert "Traceback" not in result.output
