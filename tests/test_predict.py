"""Whole-scene prediction: outputs, georeferencing, area tables, scaling, bad inputs, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import typer
from affine import Affine
from numpy.typing import NDArray
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasters import write_geotiff
from torch import Tensor, nn
from typer.testing import CliRunner

from lale.cli.predict import register
from lale.data.io.bands import parse_bands
from lale.data.schema import ARAS400K, ClassSchema, ImageSpec
from lale.data.transforms import normalize_input
from lale.errors import DataError
from lale.inference.areas import AreaCounter, row_areas_km2
from lale.inference.batch import output_names
from lale.inference.input_plan import plan_input
from lale.inference.options import PredictOptions
from lale.inference.predict import TorchBackend, load_backend, predict_scene
from lale.inference.scene import open_scene
from lale.models import create_model
from lale.runs import RunConfig, save_run

# ../shared beside the repository root
AMAZON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentinel2-amazon"
UTM = Affine(10, 0, 500_000, 0, -10, 4_500_000)
WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563


def uint16_scene(h: int = 150, w: int = 210, seed: int = 0) -> NDArray[np.uint16]:
    """Sentinel-2-like DNs with a no-data (0) corner."""
    data = np.random.default_rng(seed).integers(1, 3000, (3, h, w), dtype=np.uint16)
    data[:, :30, :40] = 0
    return data


class Pixelwise(nn.Module):
    """1×1 convolution: each output pixel depends only on its own input pixel."""

    def __init__(self, channels: int = 3, classes: int = 7) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(channels, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def config_for(spec: ImageSpec | None = None) -> RunConfig:
    schema = ARAS400K if spec is None else ClassSchema(ARAS400K.names, image=spec)
    return RunConfig.from_schema("lale_t", schema)


def read(path: Path) -> tuple[NDArray[Any], dict[str, Any]]:
    with rasterio.open(path) as src:
        colormap = src.colormap(1) if src.colorinterp[0].name == "palette" else None
        return src.read(1), {**src.profile, "colormap": colormap, "tags": src.tags()}


OPTS = PredictOptions(tile=64, overlap=16, batch_size=4)


def test_geotiff_outputs_keep_georeference_nodata_and_colours(tmp_path: Path) -> None:
    data = uint16_scene()
    src = write_geotiff(tmp_path / "scene.tif", data, nodata=0)
    opts = PredictOptions(tile=64, overlap=16, batch_size=4, probabilities=True, preview_size=50)
    model = Pixelwise()
    result = predict_scene(src, tmp_path / "out", TorchBackend(model), config_for(), opts)
    classes, prof = read(result.outputs["classes"])
    assert (prof["crs"], prof["transform"]) == (CRS.from_epsg(32635), UTM)
    assert (prof["height"], prof["width"], prof["dtype"], prof["nodata"]) == (
        150,
        210,
        "uint8",
        255,
    )
    assert prof["tiled"] and prof["compress"] == "deflate" and prof["blockxsize"] == 256
    for k, colour in enumerate(ARAS400K.display_colors):
        assert prof["colormap"][k][:3] == colour
    assert json.loads(prof["tags"]["classes"]) == list(ARAS400K.names)
    nodata = (data == 0).all(axis=0)
    assert (classes[nodata] == 255).all() and (classes[~nodata] < 7).all()
    # Same as predicting the whole image at once (the model is pixel-wise).
    plan = plan_input(open_scene(src), config_for(), opts)
    x = torch.from_numpy(plan.prepare(data, ~nodata)[None])
    with torch.inference_mode():
        whole = model(x)[0]
    np.testing.assert_array_equal(classes[~nodata], whole.argmax(0).numpy()[~nodata])
    conf, cprof = read(result.outputs["confidence"])
    expected = np.rint(torch.softmax(whole, 0).amax(0).numpy() * 255)
    assert cprof["nodata"] == 0 and (conf[nodata] == 0).all() and (conf[~nodata] >= 1).all()
    assert np.abs(conf[~nodata] - expected[~nodata]).max() <= 1
    with Image.open(result.outputs["preview"]) as im:
        assert im.mode == "P" and max(im.size) <= 50 and im.size == (42, 30)  # every 5th px
    # Area table: pixels sum to the valid pixels, 10 m pixels are 1e-4 km².
    table = json.loads(result.outputs["areas_json"].read_text())
    assert table["valid_pixels"] == int((~nodata).sum()) and table["nodata_pixels"] == 1200
    pixels = [row["pixels"] for row in table["classes"]]
    assert sum(pixels) == int((~nodata).sum())
    assert pixels == [int((classes == k).sum()) for k in range(7)]
    assert all(math.isclose(r["km2"], r["pixels"] * 1e-4) for r in table["classes"])
    assert math.isclose(sum(r["percent"] for r in table["classes"]), 100.0)
    assert table["crs"] == "EPSG:32635" and table["area_method"] == "projected"
    csv = result.outputs["areas_csv"].read_text().splitlines()
    assert csv[0] == "index,class,pixels,percent,km2" and len(csv) == 8
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"scene_{k}"
        for k in (
            "classes.tif",
            "confidence.tif",
            "probabilities.tif",
            "preview.png",
            "areas.csv",
            "areas.json",
        )
    )
    # --probabilities: K uint8 bands, softmax × 255, named by class, scale 1/255.
    with rasterio.open(result.outputs["probabilities"]) as src:
        assert src.count == 7 and src.dtypes[0] == "uint8"
        assert src.descriptions == tuple(ARAS400K.names)
        assert src.scales == (1 / 255,) * 7 and src.tags()["scale"] == "1/255"
        probs, valid = src.read(), src.dataset_mask() > 0
    np.testing.assert_array_equal(valid, ~nodata)
    soft = torch.softmax(whole, 0).numpy() * 255
    assert np.abs(probs[:, ~nodata] - soft[:, ~nodata]).max() <= 0.5 + 1e-3


def test_projected_pixel_area() -> None:
    areas, method = row_areas_km2(CRS.from_epsg(32635), UTM, 3, 4)
    assert method == "projected" and areas is not None
    np.testing.assert_allclose(areas, 1e-4)
    feet = Affine(10, 0, 0, 0, -10, 0)  # EPSG:2263 is in US survey feet
    areas, _ = row_areas_km2(CRS.from_epsg(2263), feet, 1, 1)
    assert areas is not None and math.isclose(areas[0], (10 * 1200 / 3937) ** 2 / 1e6)


def _zone_by_hand(lat1: float, lat2: float, dlon: float) -> float:
    """Ellipsoid area between two parallels over ``dlon`` degrees (textbook form), m²."""
    e = math.sqrt(WGS84_F * (2 - WGS84_F))
    b2 = (WGS84_A * (1 - WGS84_F)) ** 2

    def g(phi: float) -> float:
        s = math.sin(math.radians(phi))
        return s / (2 * (1 - e * e * s * s)) + math.log((1 + e * s) / (1 - e * s)) / (4 * e)

    return 2 * math.pi * b2 * abs(g(lat2) - g(lat1)) * dlon / 360


@pytest.mark.parametrize("lat", [0.0, -1.47, 45.0, 70.5])
def test_geographic_pixel_area_is_geodesic(lat: float) -> None:
    import pyproj

    d = 1e-4  # ≈ 11 m at the equator
    transform = Affine(d, 0, 30.0, 0, -d, lat + d)  # row 1 spans lat … lat − d
    areas, method = row_areas_km2(CRS.from_epsg(4326), transform, 3, 5)
    assert method == "geodesic" and areas is not None
    hand = _zone_by_hand(lat, lat + d, d) / 1e6
    assert math.isclose(areas[0], hand, rel_tol=1e-9)
    lons, lats = [30, 30 + d, 30 + d, 30], [lat + d, lat + d, lat, lat]
    geodesic = abs(pyproj.Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 1e6
    assert math.isclose(areas[0], geodesic, rel_tol=1e-6)
    tilted = Affine(d, 1e-12, 30.0, 1e-12, -d, lat + d)  # rotated grids: geodesic polygons
    rotated, _ = row_areas_km2(CRS.from_epsg(4326), tilted, 1, 5)
    assert rotated is not None and math.isclose(rotated[0], areas[0], rel_tol=1e-6)
    # Degrees are not metres: at 70° a pixel is about a third of an equatorial one.
    assert math.isclose(areas[0] / (d * 111.32) ** 2, math.cos(math.radians(lat)), rel_tol=0.01)
    counter = AreaCounter(2, areas)
    counter.add(0, np.array([[0, 1, 255, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], np.uint8))
    table = counter.table(["a", "b"], method)
    assert table.pixels == (6, 8) and table.nodata_pixels == 1 and table.km2 is not None
    assert math.isclose(table.km2[0], areas[0] + 5 * areas[1])


def test_png_input_gives_palette_png_and_pixel_table(tmp_path: Path) -> None:
    rgba = np.random.default_rng(2).integers(0, 255, (90, 70, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # transparent rows are no-data
    Image.fromarray(rgba, "RGBA").save(tmp_path / "photo.png")
    backend = TorchBackend(Pixelwise())
    result = predict_scene(tmp_path / "photo.png", tmp_path / "out", backend, config_for(), OPTS)
    assert set(result.outputs) == {"classes", "areas_csv", "areas_json"}
    with Image.open(result.outputs["classes"]) as im:
        assert im.mode == "P" and im.size == (70, 90)
        classes = np.asarray(im)
        assert im.getpalette()[:6] == [*ARAS400K.display_colors[0], *ARAS400K.display_colors[1]]
    assert (classes[:10] == 255).all() and (classes[10:] < 7).all()
    table = json.loads(result.outputs["areas_json"].read_text())
    assert table["total_km2"] is None and table["area_method"] == "none"
    assert table["valid_pixels"] == 80 * 70 and "km2" not in table["classes"][0]
    assert result.outputs["areas_csv"].read_text().startswith("index,class,pixels,percent\n")


def test_scaling_follows_the_run(tmp_path: Path) -> None:
    u16 = write_geotiff(tmp_path / "dn.tif", uint16_scene(20, 20))
    refl = write_geotiff(tmp_path / "refl.tif", (uint16_scene(20, 20) / 1e4).astype(np.float32))
    u8 = write_geotiff(tmp_path / "u8.tif", np.full((3, 20, 20), 40, np.uint8))
    float_run = config_for(ImageSpec(dtype="float32", scale=1.0, mean=(0.1,) * 3, std=(0.1,) * 3))
    with open_scene(u16) as s:
        assert plan_input(s, config_for(), OPTS).convert == "tci8"  # 8-bit run: TCI rule
        plan = plan_input(s, float_run, OPTS)  # float run: DN → reflectance
        assert plan.convert == "reflectance"
        data, ok = s.read(plan.bands, (0, 0, 20, 20))
        x = plan.prepare(data, ok)
    with open_scene(refl) as s:
        plan = plan_input(s, float_run, OPTS)
        assert plan.convert == "raw"
        data, ok = s.read(plan.bands, (0, 0, 20, 20))
        np.testing.assert_allclose(x, plan.prepare(data, ok), atol=1e-5)  # same model input
        assert plan_input(s, config_for(), OPTS).convert == "tci8"
    with open_scene(u8) as s:
        with pytest.raises(DataError, match="8-bit samples cannot be turned back"):
            plan_input(s, float_run, OPTS)
        plan = plan_input(s, float_run, PredictOptions(scale=255.0))  # unless told how
        data, ok = s.read(plan.bands, (0, 0, 20, 20))
        np.testing.assert_allclose(plan.prepare(data, ok), (40 / 255 - 0.1) / 0.1, rtol=1e-6)


class Recorder(Pixelwise):
    """A pixel-wise model that keeps every input batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.inputs.append(x.clone())
        return super().forward(x)


def test_aras400k_run_scales_each_window_by_its_own_max(tmp_path: Path) -> None:
    # Two 64² windows (tile 64, overlap 16: columns 0 and 48) with very different maxima, and a
    # no-data pixel (65535) that must not count as the maximum.
    data = np.random.default_rng(3).integers(1, 1000, (3, 64, 112), dtype=np.uint16)
    data[:, :, 64:] *= 3
    data[:, 5, 5] = 65535
    src = write_geotiff(tmp_path / "scene.tif", data, nodata=65535)
    config = dataclasses.replace(config_for(), scaling="aras400k")
    model = Recorder()
    opts = PredictOptions(tile=64, overlap=16, batch_size=4)
    result = predict_scene(src, tmp_path / "out", TorchBackend(model), config, opts)
    assert "ARAS400k rule" in result.plan and "per window" in result.plan
    (batch,) = model.inputs
    with open_scene(src) as scene:
        spec = plan_input(scene, config, opts).spec
    valid = np.ones((64, 64), bool)
    for i, col in enumerate((0, 48)):
        window = data[:, :, col : col + 64].astype(np.float64)
        ok = valid.copy()
        if col == 0:
            ok[5, 5] = False
        peak = window[:, ok].max()  # over the window's valid pixels, all bands
        hand = np.where(ok, window, 0) / peak * 255
        expected = normalize_input(torch.from_numpy(hand.astype(np.uint8).astype(np.float32)), spec)
        expected = torch.where(torch.from_numpy(ok), expected, 0.0)
        torch.testing.assert_close(batch[i], expected)
    # The same window under the true-colour rule of an ordinary run differs.
    with open_scene(src) as scene:
        assert plan_input(scene, config_for(), opts).convert == "tci8"


def test_old_run_configs_keep_the_truecolor_rule() -> None:
    body = config_for().to_dict()
    body.pop("scaling")
    assert RunConfig.from_dict(body).scaling == "truecolor"
    with pytest.raises(ValueError, match="scaling"):
        dataclasses.replace(config_for(), scaling="bogus")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "file not found"),
        ("garbage_tif", "unreadable"),
        ("truncated_png", "unreadable image"),
        ("two_bands", "has 2 bands but the model takes 3"),
        ("band_too_high", "--bands asks for band 5"),
        ("all_nodata", "every pixel is no-data"),
        ("all_transparent", "every pixel is no-data"),
    ],
)
def test_bad_inputs_raise_one_line_errors_naming_the_file(
    tmp_path: Path, case: str, message: str
) -> None:
    path = tmp_path / f"{case}.tif"
    opts = OPTS
    if case == "garbage_tif":
        path.write_bytes(b"II*\x00 not really a tiff")
    elif case == "truncated_png":
        path = tmp_path / f"{case}.png"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif case == "two_bands":
        write_geotiff(path, uint16_scene(20, 20)[:2])
    elif case == "band_too_high":
        write_geotiff(path, uint16_scene(20, 20))
        opts = PredictOptions(tile=64, overlap=16, bands=(5, 3, 2))
    elif case == "all_nodata":
        write_geotiff(path, np.zeros((3, 70, 70), np.uint16), nodata=0)
    elif case == "all_transparent":
        path = tmp_path / f"{case}.png"
        Image.fromarray(np.zeros((20, 20, 4), np.uint8), "RGBA").save(path)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        predict_scene(path, out, TorchBackend(Pixelwise()), config_for(), opts)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text
    assert not out.exists() or not any(out.iterdir())  # nothing half-written is left


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


@pytest.mark.usefixtures("one_thread")
def test_cli_completes_good_inputs_and_fails_at_the_end(tmp_path: Path, run_dir: Path) -> None:
    good = write_geotiff(tmp_path / "good.tif", uint16_scene(100, 130), nodata=0)
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "good.png")
    Image.fromarray(np.full((30, 20, 3), 60, np.uint8)).save(tmp_path / "good.jpg")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    out = tmp_path / "out"
    args = [
        "predict",
        "--run",
        str(run_dir),
        "--out",
        str(out),
        "--tile",
        "64",
        "--overlap",
        "16",
        "--no-progress",
    ]
    pictures = [str(tmp_path / "good.png"), str(tmp_path / "good.jpg")]
    res = CliRunner().invoke(_cli(), [*args, str(bad), str(good), *pictures])
    assert res.exit_code == 1, res.output
    assert "1 of 4 inputs failed: bad.tif" in res.output
    names = ["good_classes.tif", "good_preview.png", "good_areas.csv", "good-2_classes.png"]
    for name in [*names, "good-3_classes.png", "good-3_areas.json"]:
        assert (out / name).is_file(), name
    res = CliRunner().invoke(_cli(), [*args, str(good), "--probabilities", "--blend", "uniform"])
    assert res.exit_code == 0, res.output
    assert (out / "good_confidence.tif").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bands", "4,x"], "--bands expects"),
        (["--bands", "1,2"], "the model takes 3"),
        (["--overlap", "64"], "overlap < tile"),
        (["--blend", "gauss"], "Invalid value"),
        (["--device", "tpu"], "unsupported device"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, run_dir: Path, extra: list[str], message: str) -> None:
    args = ["predict", "--run", str(run_dir), "--out", str(tmp_path), "--tile", "64"]
    args += ["--overlap", "16", *extra]
    res = CliRunner().invoke(_cli(), [*args, str(tmp_path / "x.tif")])
    assert res.exit_code == 2 and message in res.output


def test_cli_bad_run_dir_and_onnx(tmp_path: Path, run_dir: Path) -> None:
    res = CliRunner().invoke(
        _cli(), ["predict", "--run", str(tmp_path / "nope"), "--out", str(tmp_path), "x.tif"]
    )
    assert res.exit_code == 2 and "run directory not found" in res.output
    try:
        import lale.inference.onnx.backend  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="onnx backend is not available"):
            load_backend(run_dir, "onnx")
    else:
        with pytest.raises(ValueError, match=r"model\.onnx"):
            load_backend(run_dir, "onnx")


def test_helpers() -> None:
    assert parse_bands("4,3,2") == (4, 3, 2) and parse_bands(None) is None
    with pytest.raises(ValueError):
        parse_bands("0,1,2")
    paths = [Path("a/x.tif"), Path("b/x.tif"), Path("x.png"), Path("y.tif")]
    assert output_names(paths) == ["x", "x-2", "x-3", "y"]


@pytest.mark.skipif(
    not (AMAZON / "images" / "sen2_amazon_12band.tif").is_file(),
    reason=f"real Sentinel-2 sample not present at {AMAZON}",
)
@pytest.mark.usefixtures("one_thread")
def test_real_sentinel2_scene_in_a_geographic_crs(tmp_path: Path) -> None:
    src_path = AMAZON / "images" / "sen2_amazon_12band.tif"
    spec = ImageSpec(dtype="float32", scale=1.0, mean=(0.05,) * 3, std=(0.03,) * 3)
    config = config_for(spec)
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", create_model("lale_t", 7, 3), config)
    res = CliRunner().invoke(
        _cli(),
        [
            "predict",
            "--run",
            str(run),
            "--out",
            str(tmp_path / "out"),
            "--bands",
            "4,3,2",
            "--no-progress",
            str(src_path),
        ],
    )
    assert res.exit_code == 0, res.output
    classes, prof = read(tmp_path / "out" / "sen2_amazon_12band_classes.tif")
    with rasterio.open(src_path) as src:
        assert prof["crs"] == src.crs and prof["crs"].is_geographic
        assert prof["transform"] == src.transform
        assert (prof["height"], prof["width"]) == (src.height, src.width)
    table = json.loads((tmp_path / "out" / "sen2_amazon_12band_areas.json").read_text())
    assert table["area_method"] == "geodesic" and table["input_plan"].startswith("bands 4,3,2")
    assert table["valid_pixels"] + table["nodata_pixels"] == classes.size
    # 247 × 237 px of about 10 m ≈ 5.9 km².
    assert 5.0 < table["total_km2"] < 7.0


def test_onnx_backend_gives_the_torch_class_map(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("lale.inference.onnx.backend")
    model = Pixelwise().eval()
    run = save_run(tmp_path / "run", model, config_for())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(
            model,
            (torch.randn(1, 3, 64, 64),),
            str(run / "model.onnx"),
            input_names=["image"],
            dynamic_axes={"image": {0: "batch"}},
            dynamo=False,
        )
    src = write_geotiff(tmp_path / "scene.tif", uint16_scene(), nodata=0)
    backend, config = load_backend(run, "onnx")
    onnx = predict_scene(src, tmp_path / "onnx", backend, config, OPTS)
    ref = predict_scene(src, tmp_path / "torch", TorchBackend(model), config, OPTS)
    np.testing.assert_array_equal(read(onnx.outputs["classes"])[0], read(ref.outputs["classes"])[0])


def test_alpha_band_is_a_mask_and_tiffs_without_crs_have_no_km2(tmp_path: Path) -> None:
    data = np.concatenate([uint16_scene(40, 50), np.full((1, 40, 50), 65535, np.uint16)])
    data[3, :, :5] = 0  # transparent columns
    path = write_geotiff(tmp_path / "rgba.tif", data, crs=None, transform=Affine.identity())
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    result = predict_scene(path, tmp_path / "out", TorchBackend(Pixelwise()), config_for(), OPTS)
    classes, prof = read(result.outputs["classes"])
    assert prof["crs"] is None and (classes[:, :5] == 255).all() and (classes[:, 5:] < 7).all()
    assert result.areas.km2 is None and result.areas.nodata_pixels == 40 * 5
