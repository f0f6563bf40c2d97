"""Scene inference from an exported ONNX file alone, in a Python where PyTorch cannot be imported.

The run's model is exported with the TorchScript exporter (fast) and given ``lale export``'s
metadata; ``lale predict --model FILE.onnx`` then runs in a subprocess whose import system
refuses torch, Lightning, torchmetrics, timm and SMP, and must match ``lale predict --run RUN
--backend onnx`` exactly. Also here: the one-line errors of torch-needing commands there, and
the QGIS Deepness plugin's standardisation and resolution.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import typer
from numpy.typing import NDArray
from rasterio.transform import Affine
from rasters import write_geotiff
from torch import nn
from typer.testing import CliRunner

from lale.data.schema import ClassSchema, ImageSpec
from lale.data.schema.aras import ARAS400K
from lale.errors import EXIT_UNAVAILABLE, EXIT_USAGE
from lale.inference.onnx.deepness import deepness_metadata, deepness_standardization
from lale.run_config import RunConfig
from lale.runs import save_run
from tests.classmaps import write_class_map

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SRC = str(Path(__file__).resolve().parents[1] / "src")
BLOCKED = ("torch", "lightning", "torchmetrics", "timm", "segmentation_models_pytorch")
# Makes importing any of BLOCKED fail as if it were not installed, and records every attempt
# (a caught ImportError must not hide one).
BLOCKER = f"""
import importlib.abc, sys
attempts = []
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NoTorch())
from lale.cli import app
"""
# `lale ARGV` there; then the attempted and the loaded modules of BLOCKED on stderr.
NO_TORCH = (
    BLOCKER
    + f"""
try:
    app(sys.argv[1:], prog_name="lale")
except SystemExit as done:
    code = done.code
else:
    code = 0
print("attempted imports:", " ".join(sorted(set(attempts))), file=sys.stderr)
loaded = [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
print("loaded:", " ".join(loaded), file=sys.stderr)
sys.exit(code)
"""
)
# Each argument a whole `lale` command line, run there one after the other.
SEVERAL = (
    BLOCKER
    + """
for command in sys.argv[1:]:
    try:
        app(command.split(), prog_name="lale")
    except SystemExit as done:
        print(f"exit {done.code}", file=sys.stderr)
    print("--", file=sys.stderr)
"""
)


def lale_without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    """``lale ARGS`` in a subprocess where PyTorch and its family cannot be imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _cli() -> typer.Typer:
    from lale.cli import app

    return app


class SmallNet(nn.Module):
    """Two convolutions, so neighbouring pixels and the window blending matter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 7, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _scene(h: int = 230, w: int = 170, seed: int = 0) -> NDArray[np.uint16]:
    data = np.random.default_rng(seed).integers(1, 3000, (3, h, w), dtype=np.uint16)
    data[:, :25, :30] = 0  # a no-data corner
    return data


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run with ``model.onnx`` carrying ``lale export``'s metadata, and a copy shipped alone."""
    from lale.inference.onnx.io import onnx_metadata, set_metadata

    root = tmp_path_factory.mktemp("edge")
    model = SmallNet().eval()
    config = RunConfig.from_schema("lale_t", ARAS400K)
    run = save_run(root / "run", model, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(
            model,
            (torch.randn(1, 3, 64, 64),),
            str(run / "model.onnx"),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch", 2: "h", 3: "w"}},
            dynamo=False,
        )
    proto = onnx.load(str(run / "model.onnx"))
    set_metadata(proto, onnx_metadata(config))
    onnx.save(proto, str(run / "model.onnx"))
    shipped = root / "edge-device" / "landcover.onnx"
    shipped.parent.mkdir()
    shipped.write_bytes((run / "model.onnx").read_bytes())
    return run, shipped


def _read(path: Path) -> tuple[NDArray[Any], dict[str, Any]]:
    with rasterio.open(path) as src:
        colormap = src.colormap(1) if src.colorinterp[0].name == "palette" else None
        return src.read(1), {**src.profile, "colormap": colormap, "tags": src.tags()}


OPTIONS = ["--tile", "64", "--overlap", "16", "--batch-size", "4", "--no-progress"]


def test_predict_from_the_onnx_file_alone_without_torch(
    edge_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, shipped = edge_run
    scene = write_geotiff(tmp_path / "scene.tif", _scene(), nodata=0)
    edge_out, ref_out = tmp_path / "edge", tmp_path / "ref"
    done = lale_without_torch(
        "predict", "--model", str(shipped), str(scene), "--out", str(edge_out), "--probabilities",
        *OPTIONS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "attempted imports: \n" in done.stderr and "loaded: \n" in done.stderr  # never tried
    ref = CliRunner().invoke(
        _cli(),
        ["predict", "--run", str(run), "--backend", "onnx", str(scene), "--out", str(ref_out),
         "--probabilities", *OPTIONS],
    )  # fmt: skip
    assert ref.exit_code == 0, ref.output
    names = sorted(p.name for p in ref_out.iterdir())
    assert sorted(p.name for p in edge_out.iterdir()) == names and "scene_classes.tif" in names
    for kind in ("classes", "confidence"):
        got, got_profile = _read(edge_out / f"scene_{kind}.tif")
        want, want_profile = _read(ref_out / f"scene_{kind}.tif")
        np.testing.assert_array_equal(got, want)
        assert got_profile == want_profile  # CRS, transform, no-data, colours, class names
    classes, profile = _read(edge_out / "scene_classes.tif")
    assert json.loads(profile["tags"]["classes"]) == list(ARAS400K.names)
    assert (classes[:25, :30] == 255).all() and (classes[25:] < 7).all()
    assert (edge_out / "scene_areas.csv").read_text() == (ref_out / "scene_areas.csv").read_text()
    table = json.loads((edge_out / "scene_areas.json").read_text())
    assert table == json.loads((ref_out / "scene_areas.json").read_text())
    assert table["valid_pixels"] == 230 * 170 - 25 * 30 and table["area_method"] == "projected"
    assert "scene.tif" in done.stdout and "predicted 1 input" in done.stdout


def test_torch_commands_fail_in_one_line_without_torch(tmp_path: Path) -> None:
    done = lale_without_torch("train", "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert done.returncode == EXIT_UNAVAILABLE
    error = done.stderr.split("attempted imports:")[0].strip()
    assert error == (
        "error: lale train needs PyTorch (module 'torch' is not installed): "
        "pip install 'lale[train]'"
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "r").exists()
    done = lale_without_torch("predict", "--run", str(tmp_path), "x.tif", "--out", str(tmp_path))
    assert done.returncode == EXIT_UNAVAILABLE and "Traceback" not in done.stderr
    assert "--model FILE.onnx (lale[edge])" in done.stderr.splitlines()[0]


def test_what_needs_torch_and_what_does_not(tmp_path: Path) -> None:
    """README: the base install runs synth, schema init, areas and change; the torch commands
    say what to get."""
    data = tmp_path / "data"
    grid = np.arange(64, dtype=np.uint8).reshape(8, 8) % 3
    map_a = write_class_map(tmp_path / "a.tif", grid)
    map_b = write_class_map(tmp_path / "b.tif", grid[::-1].copy())
    commands = {
        f"synth {data} --train 2 --val 0 --test 0 --size 32 --no-mosaic": None,
        f"schema init {data}": None,
        f"areas {map_a} --out {tmp_path / 'areas'}": None,
        f"change {map_a} {map_b} --out {tmp_path / 'change'}": None,
        f"train --data {data} --out {tmp_path / 'r'}": "train",
        f"evaluate --run {tmp_path} --data {data}": "train",
        f"export --run {tmp_path}": "onnx",
        "profile lale_t": "train",
        f"pack {data} --out {tmp_path / 'shards'}": "train",
        "models": "train",
        f"benchmark --preset quick --out {tmp_path / 'b'}": "train",
        f"demo --out {tmp_path / 'd'}": "train",
    }
    done = subprocess.run(
        [sys.executable, "-c", SEVERAL, *commands],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=300,
        check=False,
    )
    outcomes = done.stderr.split("--\n")
    assert len(outcomes) == len(commands) + 1, done.stderr
    for (command, extra), outcome in zip(commands.items(), outcomes, strict=False):
        name = command.split()[0]
        if extra is None:
            assert "exit 0" in outcome and "error" not in outcome, (command, outcome)
            continue
        lines = outcome.strip().splitlines()
        assert lines[-1] == f"exit {EXIT_UNAVAILABLE}" and len(lines) == 2, (command, outcome)
        assert lines[0].startswith(f"error: lale {name} needs PyTorch"), lines[0]
        assert lines[0].endswith(f"pip install 'lale[{extra}]'"), lines[0]
    assert (data / "schema.json").is_file() and not (tmp_path / "r").exists()
    assert (tmp_path / "areas" / "a_areas.png").is_file()
    assert (tmp_path / "change" / "change_matrix.csv").is_file()


def test_base_install_is_torch_free_and_make_installs_every_extra() -> None:
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    base = {re.split(r"[<>=\[ ]", d)[0].lower() for d in project["dependencies"]}
    assert {"numpy", "rasterio", "pyproj", "pillow", "typer", "rich", "pyyaml"} <= base
    assert not base & {"torch", "lightning", "torchmetrics", "safetensors", "onnxruntime"}
    extras = project["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["edge"]] == ["onnxruntime"]
    assert {"torch", "lightning", "torchmetrics"} <= {
        re.split(r"[<>=]", d)[0] for d in extras["train"]
    }
    assert all("lale[train]" in extras[k] for k in ("baselines", "onnx"))
    makefile = (root / "Makefile").read_text()
    line = next(x for x in makefile.splitlines() if x.startswith("EXTRAS :="))
    assert set(line.split(":=")[1].strip().split(",")) == set(extras)


def test_model_option_errors(edge_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, shipped = edge_run
    scene = write_geotiff(tmp_path / "scene.tif", _scene(40, 40), nodata=0)
    cases: list[tuple[list[str], str]] = [
        (["--model", str(shipped), "--run", str(run)], "one of them"),
        ([], "one of them"),
        (["--model", str(shipped), "--backend", "torch"], "--backend torch needs --run"),
        (["--model", str(tmp_path / "none.onnx")], "ONNX file not found"),
        (["--model", str(scene)], "not a model onnxruntime can load"),
        (["--model", str(shipped), "--device", "tpu"], "device must be cpu, cuda or cuda:N"),
    ]
    plain = tmp_path / "plain.onnx"  # an ONNX file without lale's metadata
    proto = onnx.load(str(shipped))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    cases.append((["--model", str(plain)], "carries no lale run config"))
    for args, message in cases:
        res = CliRunner().invoke(_cli(), ["predict", *args, str(scene), "--out", str(tmp_path)])
        assert res.exit_code == EXIT_USAGE, (args, res.output)
        assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def _prepared(root: Path, crs: str, res: float) -> Path:
    info = {"crs": crs, "resolution": [res, res]}
    root.mkdir()
    (root / "prepare.json").write_text(json.dumps({"inputs": {"imagery": [info, info]}}))
    return root


def test_deepness_resolution_comes_from_the_training_imagery(tmp_path: Path) -> None:
    def meta(data: Path | None) -> dict[str, Any]:
        recipe = None if data is None else {"data": str(data)}
        config = RunConfig.from_schema("lale_t", ARAS400K, recipe=recipe)
        return {k: json.loads(v) for k, v in deepness_metadata(config).items()}

    assert meta(_prepared(tmp_path / "utm", "EPSG:32635", 10.0))["resolution"] == 1000.0
    assert "resolution" not in meta(_prepared(tmp_path / "geo", "EPSG:4326", 0.0001))
    assert "resolution" not in meta(tmp_path / "missing") and "resolution" not in meta(None)


def test_deepness_standardization_matches_lale_for_raw_samples() -> None:
    """Deepness computes (v / 255 − m) / s; lale ((v + offset) / scale − mean) / std."""
    spec = ImageSpec(dtype="uint16", scale=10000.0, offset=-1000.0, mean=(0.1, 0.2, 0.3),
                     std=(0.05, 0.06, 0.07))  # fmt: skip
    config = RunConfig.from_schema("lale_t", ClassSchema(ARAS400K.names, image=spec))
    m, s = (np.array(x)[:, None] for x in deepness_standardization(config))
    v = np.array([[0.0, 1234.0, 9000.0]] * 3)
    mean, std = (np.array(x)[:, None] for x in (spec.mean, spec.std))
    np.testing.assert_allclose((v / 255 - m) / s, ((v - 1000.0) / 10000.0 - mean) / std)


def test_scene_transform_is_kept(edge_run: tuple[Path, Path], tmp_path: Path) -> None:
    """A geographic scene gets geodesic areas from the ONNX file alone as well."""
    _, shipped = edge_run
    geo = Affine(0.0001, 0, -60.0, 0, -0.0001, -3.0)
    scene = write_geotiff(tmp_path / "geo.tif", _scene(80, 90), nodata=0, crs="EPSG:4326",
                          transform=geo)  # fmt: skip
    res = CliRunner().invoke(
        _cli(), ["predict", "--model", str(shipped), str(scene), "--out", str(tmp_path / "o"),
                 *OPTIONS],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = json.loads((tmp_path / "o" / "geo_areas.json").read_text())
    assert table["area_method"] == "geodesic" and table["crs"] == "EPSG:4326"


@pytest.mark.parametrize(("h", "w", "pad_h", "pad_w"), [(5, 7, 3, 0), (5, 7, 4, 6), (3, 2, 5, 9)])
def test_numpy_padding_is_the_models_rule(h: int, w: int, pad_h: int, pad_w: int) -> None:
    from lale.inference.pad import pad_bottom_right
    from lale.models.padding import pad_bottom_right as torch_pad

    x = np.random.default_rng(0).normal(size=(2, 3, h, w)).astype(np.float32)
    expected = torch_pad(torch.from_numpy(x), pad_h, pad_w).numpy()
    np.testing.assert_array_equal(pad_bottom_right(x, pad_h, pad_w), expected)


def test_numpy_class_indices_and_confidence_match_torch() -> None:
    from lale.inference.row_products import row_products

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 40, 50)).astype(np.float32) * 3
    logits[:, 0, 0] = 1.0  # a tie: the first class wins, as with argmax
    t = torch.from_numpy(logits)
    rows = row_products(logits, np.ones((40, 50), dtype=bool), confidence=True)
    assert rows.confidence is not None
    np.testing.assert_array_equal(rows.classes, t.argmax(0).numpy())
    expected = torch.softmax(t, 0).amax(0).mul(255).round().clamp(1, 255).numpy()
    assert np.abs(rows.confidence.astype(int) - expected).max() <= 1
    assert rows.classes[0, 0] == 0 and rows.confidence[0, 0] == 36


AMAZON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentinel2-amazon"


@pytest.mark.skipif(
    not (AMAZON / "images" / "sen2_amazon_12band.tif").is_file(),
    reason=f"real Sentinel-2 sample not present at {AMAZON}",
)
def test_real_sentinel2_scene_from_the_onnx_file_alone(
    edge_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, shipped = edge_run
    scene = AMAZON / "images" / "sen2_amazon_12band.tif"
    done = lale_without_torch(
        "predict", "--model", str(shipped), str(scene), "--bands", "4,3,2",
        "--out", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "attempted imports: \n" in done.stderr
    table = json.loads((tmp_path / "sen2_amazon_12band_areas.json").read_text())
    assert table["area_method"] == "geodesic" and 5.0 < table["total_km2"] < 7.0
