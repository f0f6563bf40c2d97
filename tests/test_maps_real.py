"""``lale areas`` and ``lale change`` on predictions of the real Sentinel-2 scene (EPSG:4326)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from shapely.geometry import box
from typer.testing import CliRunner

from lale import cli
from tests.classmaps import write_zones

AMAZON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentinel2-amazon"
SCENE = AMAZON / "images" / "sen2_amazon_12band.tif"
runner = CliRunner()


def _predict(tmp_path: Path, seed: int) -> Path:
    from lale.data.schema import ARAS400K, ClassSchema
    from lale.data.schema.image_spec import ImageSpec
    from lale.models import create_model
    from lale.runs import RunConfig, save_run

    spec = ImageSpec(dtype="float32", scale=1.0, mean=(0.05,) * 3, std=(0.03,) * 3)
    config = RunConfig.from_schema("lale_t", ClassSchema(ARAS400K.names, image=spec))
    torch.manual_seed(seed)
    run = save_run(tmp_path / f"run{seed}", create_model("lale_t", 7, 3), config)
    out = tmp_path / f"pred{seed}"
    args = ["predict", "--run", str(run), "--out", str(out), "--bands", "4,3,2", str(SCENE)]
    result = runner.invoke(cli.app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.skipif(not SCENE.is_file(), reason=f"real Sentinel-2 sample not present at {AMAZON}")
@pytest.mark.usefixtures("one_thread")
def test_zones_in_utm_and_change_on_real_predictions(tmp_path: Path) -> None:
    import pyproj
    import rasterio

    pred_a, pred_b = _predict(tmp_path, 0), _predict(tmp_path, 1)
    map_a = pred_a / "sen2_amazon_12band_classes.tif"
    map_b = pred_b / "sen2_amazon_12band_classes.tif"
    with rasterio.open(SCENE) as src:
        west, south, east, north = src.bounds
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True)
    (x0, x1), (y0, y1) = to_utm.transform([west, east], [south, north])
    mid, pad = (x0 + x1) / 2, 500.0
    halves = [box(x0 - pad, y0 - pad, mid, y1 + pad), box(mid, y0 - pad, x1 + pad, y1 + pad)]
    zones = write_zones(tmp_path / "halves.gpkg", halves, ["west", "east"], "EPSG:32721")
    out = tmp_path / "products"
    result = runner.invoke(
        cli.app,
        ["areas", str(map_a), "--zones", str(zones), "--by", "name", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    table = json.loads((pred_a / "sen2_amazon_12band_areas.json").read_text())
    whole = np.array([c["km2"] for c in table["classes"]])
    zonal = json.loads((out / "sen2_amazon_12band_classes_zones.json").read_text())["zones"]
    both = sum(np.array([c["km2"] for c in z["classes"]]) for z in zonal)
    assert both == pytest.approx(whole, rel=1e-6, abs=1e-9)
    assert all(z["valid_km2"] > 0.1 * table["total_km2"] for z in zonal)

    result = runner.invoke(cli.app, ["change", str(map_a), str(map_b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    change = json.loads((out / "change.json").read_text())
    assert change["nodata_pixels"] == {"a_only": 0, "b_only": 0, "both": 0}
    assert np.sum(change["matrix"], axis=1) == pytest.approx(whole, rel=1e-9)
    assert np.sum(change["matrix"], axis=0) == pytest.approx(
        [c["km2"] for c in json.loads((pred_b / "sen2_amazon_12band_areas.json").read_text())[
            "classes"]], rel=1e-9,
    )  # fmt: skip
