"""lale predict's map products checked by GDAL's own tools, not only by the libraries lale uses.

Every GeoTIFF written (class map, confidence, probabilities) passes GDAL's COG validator
(``validate_cloud_optimized_geotiff.py`` from GDAL's Python utilities) as well as rio-cogeo;
every polygon written is valid (shapely ``is_valid``), and the GeoPackage opens in ``ogrinfo``
with the feature count lale reports. GDAL's command-line tools come from the system
(Debian: ``apt-get install gdal-bin python3-gdal``); CI installs them, and without them these
tests are skipped, saying why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lale import cli
from tests.rasters import UTM_10M, write_geotiff

runner = CliRunner()
OGRINFO = shutil.which("ogrinfo")
SYSTEM_PYTHON = "/usr/bin/python3"
VALIDATOR = "osgeo_utils.samples.validate_cloud_optimized_geotiff"


def _has_validator() -> bool:
    if not Path(SYSTEM_PYTHON).is_file():
        return False
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", f"import {VALIDATOR}"], capture_output=True, check=False
    )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(
        OGRINFO is None or not _has_validator(),
        reason="GDAL's tools are not installed (apt-get install gdal-bin python3-gdal)",
    ),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
]


@pytest.fixture(scope="module")
def products(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lale predict`` of a 1100×900 8-bit scene (big enough for overviews), all products."""
    root = tmp_path_factory.mktemp("gdal")
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (3, 12, 12)).astype(np.uint8)
    image = blocks.repeat(100, axis=1).repeat(100, axis=2)[:, :900, :1100]
    scene = root / "scene.tif"
    write_geotiff(scene, image, transform=UTM_10M)
    out = root / "out"
    args = ["predict", str(scene), "--run", str(run_dir), "--out", str(out), "--no-progress"]
    extra = ["--confidence", "--probabilities", "--vector", "gpkg", "--batch-size", "4"]
    result = runner.invoke(cli.app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return out


def test_every_geotiff_passes_gdals_cog_validator(products: Path) -> None:
    tifs = sorted(products.glob("*.tif"))
    assert {p.name for p in tifs} >= {
        "scene_classes.tif", "scene_confidence.tif", "scene_probabilities.tif"
    }  # fmt: skip
    for tif in tifs:
        run = subprocess.run(
            [SYSTEM_PYTHON, "-m", VALIDATOR, "--full-check=yes", str(tif)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{tif} is a valid cloud optimized GeoTIFF" in run.stdout


def test_the_geopackage_opens_in_ogrinfo_with_valid_polygons(products: Path) -> None:
    import pyogrio
    import shapely

    gpkg = products / "scene_classes.gpkg"
    assert OGRINFO is not None
    run = subprocess.run(
        [OGRINFO, "-ro", "-so", "-al", str(gpkg)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    counted = re.search(r"Feature Count: (\d+)", run.stdout)
    assert counted is not None, run.stdout
    _, _, wkb, _ = pyogrio.raw.read(gpkg)
    geoms = shapely.from_wkb(wkb)
    assert int(counted.group(1)) == len(geoms) > 10
    assert bool(shapely.is_valid(geoms).all())
    assert "Geometry: Multi Polygon" in run.stdout or "Geometry: Polygon" in run.stdout
    assert 'ID["EPSG",32635]' in run.stdout  # the scene's CRS, UTM 35N
