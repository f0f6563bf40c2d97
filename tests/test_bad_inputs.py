"""The newer commands under bad input, each case through the CLI a user types.

Every case is one line on stderr that names the file (or the option) and what is wrong, no
traceback, and nothing left under a final output name; a repairable input (invalid zone
polygons) is repaired and said so. ``lale pack``, ``lale train --data SHARDS``, ``lale areas``,
``lale change``, ``lale predict --model`` and ``lale benchmark``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from shapely.geometry import Polygon, box
from typer.testing import CliRunner

from lale import cli
from lale.data.synthetic import write_dataset
from tests.classmaps import write_class_map, write_zones
from tests.rasters import UTM_10M, write_geotiff

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
]


def _one_line(result: Any, code: int = 2) -> str:
    """The single error line of a failed command (its exit code checked, no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return str(lines[0])


def _invoke(*args: str) -> Any:
    return runner.invoke(cli.app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=2, size=64, seed=0)
    return root


# -- lale pack --------------------------------------------------------------------------------
def _pack(source: Path, out: Path) -> Any:
    return _invoke("pack", source, "--out", out)


def _no_partial(parent: Path) -> None:
    assert not [p for p in parent.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("problem", ["truncated", "mismatched", "not-a-dataset", "out-exists"])
def test_pack_bad_input_is_one_line_and_leaves_nothing(
    data: Path, tmp_path: Path, problem: str
) -> None:
    root = Path(shutil.copytree(data, tmp_path / "d"))
    victim = sorted((root / "val" / "images").glob("*.png"))[0]
    named = str(victim)
    if problem == "truncated":
        whole = victim.read_bytes()
        victim.write_bytes(whole[: len(whole) // 2])
    elif problem == "mismatched":
        Image.open(victim).resize((32, 64)).save(victim)
        named = str(root / "val" / "masks" / victim.name)
    elif problem == "not-a-dataset":
        root = tmp_path / "photos"
        root.mkdir()
        Image.new("RGB", (8, 8)).save(root / "a.png")
        named = str(root)
    out = tmp_path / "shards"
    if problem == "out-exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine\n")
        named = str(out)
    line = _one_line(_pack(root, out))
    assert named in line, line
    if problem == "out-exists":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()
    _no_partial(tmp_path)


def test_pack_on_a_full_disk_is_one_line_and_leaves_nothing(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litdata.streaming import writer

    def full(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer.BinaryWriter, "write_chunk", full)
    out = tmp_path / "shards"
    line = _one_line(_pack(data, out), 1)
    assert str(out) in line and "No space left on device" in line, line
    assert not out.exists()
    _no_partial(tmp_path)


# -- lale train --data SHARDS -------------------------------------------------------------
@pytest.fixture(scope="module")
def shards(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "shards"
    result = _pack(data, out)
    assert result.exit_code == 0, result.output
    return out


def _train(source: Path, out: Path, *extra: str) -> Any:
    return _invoke(
        "train", f"--data={source}", f"--out={out}", "--epochs=1", "--batch-size=4",
        "--crop-size=32", "--no-progress",
        *[f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()], *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    "problem",
    [
        "chunk-missing",
        "chunk-truncated",
        "chunk-corrupted",
        "index-broken",
        "lale-index",
        "other-schema",
    ],
)
def test_train_on_bad_shards_is_one_line_before_the_run_directory(
    shards: Path, tmp_path: Path, problem: str
) -> None:
    copy = Path(shutil.copytree(shards, tmp_path / "shards"))
    chunk = sorted((copy / "val").glob("*.bin"))[0]
    named = str(chunk)
    extra: tuple[str, ...] = ()
    if problem == "chunk-missing":
        chunk.unlink()
    elif problem == "chunk-truncated":
        chunk.write_bytes(chunk.read_bytes()[:-100])
    elif problem == "chunk-corrupted":  # same size, its second half zeroed: found on decoding
        raw = bytearray(chunk.read_bytes())
        raw[len(raw) // 2 :] = b"\x00" * (len(raw) - len(raw) // 2)
        chunk.write_bytes(bytes(raw))
    elif problem == "index-broken":
        index = copy / "val" / "index.json"
        index.write_text(index.read_text()[:40])
        named = str(index)
    elif problem == "lale-index":
        index = copy / "val" / "lale-index.json"
        index.write_text(json.dumps({"names": ["a"], "images": [], "masks": [], "sizes": []}))
        named = str(index)
    else:  # the shards hold ARAS400k masks; a schema of other colours labels none of them
        colours = ([1, 2, 3], [4, 5, 6])
        classes = [
            {"name": n, "value": i, "color": c}
            for i, (n, c) in enumerate(zip("ab", colours, strict=True))
        ]
        schema = {"format": "lale.class_schema", "version": 1, "name": "other", "classes": classes}
        (tmp_path / "other.json").write_text(json.dumps(schema))
        extra = (f"--schema={tmp_path / 'other.json'}",)
        named = "masks"
    out = tmp_path / "run"
    line = _one_line(_train(copy, out, *extra))
    assert named in line, line
    assert not out.exists()


# -- lale areas -----------------------------------------------------------------------------
MAP = np.array([[0, 0, 1, 2], [0, 1, 1, 2], [255, 1, 2, 2], [0, 0, 255, 1]], dtype=np.uint8)
X0, Y0 = 500_000.0, 4_500_000.0


def _areas(path: Path, out: Path, *extra: str) -> Any:
    return _invoke("areas", path, "--out", out, "--no-progress", *extra)


@pytest.mark.parametrize("problem", ["float", "rgb", "png", "values-off-the-classes"])
def test_areas_of_a_raster_that_is_not_a_class_map_is_one_line(
    tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "map.tif"
    if problem == "float":
        write_geotiff(path, MAP[None].astype(np.float32) / 3, transform=UTM_10M)
    elif problem == "rgb":
        write_geotiff(path, np.stack([MAP] * 3), transform=UTM_10M)
    elif problem == "png":
        path = tmp_path / "map.png"
        Image.fromarray(MAP).save(path)
    else:
        bad = MAP.copy()
        bad[0, 0] = 9  # three classes named, value 9 is neither a class nor no-data
        write_class_map(path, bad)
    out = tmp_path / "o"
    line = _one_line(_areas(path, out))
    assert str(path) in line, line
    assert not out.exists() or not list(out.iterdir())


def _zones_result(tmp_path: Path, zones: Path, *extra: str) -> Any:
    path = write_class_map(tmp_path / "map.tif", MAP)
    return _areas(path, tmp_path / "o", "--zones", str(zones), *extra)


@pytest.mark.parametrize("problem", ["no-crs", "empty", "by-missing", "by-not-unique"])
def test_areas_with_bad_zones_is_one_line_naming_the_zones(tmp_path: Path, problem: str) -> None:
    square = box(X0, Y0 - 20, X0 + 20, Y0)
    crs = None if problem == "no-crs" else "EPSG:32635"
    geoms, names = ([], []) if problem == "empty" else ([square, square], ["a", "a"])
    if problem != "by-not-unique":
        geoms, names = geoms[:1], names[:1]
    zones = write_zones(tmp_path / "z.gpkg", geoms, names, crs)
    by = "district" if problem == "by-missing" else "name"
    line = _one_line(_zones_result(tmp_path, zones, "--by", by))
    assert str(zones) in line, line
    expected = {"by-missing": "district", "by-not-unique": "'a'", "no-crs": "CRS"}
    assert expected.get(problem, "no features") in line, line
    out = tmp_path / "o"
    assert not out.exists() or not list(out.iterdir())


def test_areas_repairs_invalid_zone_polygons_and_says_so(tmp_path: Path) -> None:
    # A bow tie (self-intersecting ring) and a valid square: the bow tie is made valid.
    bowtie = Polygon([(X0, Y0), (X0 + 40, Y0 - 40), (X0 + 40, Y0), (X0, Y0 - 40)])
    square = box(X0, Y0 - 20, X0 + 20, Y0)
    zones = write_zones(tmp_path / "z.gpkg", [bowtie, square], ["tie", "sq"], "EPSG:32635")
    result = _zones_result(tmp_path, zones, "--by", "name")
    assert result.exit_code == 0, result.output
    warned = [ln for ln in result.stderr.splitlines() if "invalid" in ln]
    assert len(warned) == 1 and "tie" in warned[0] and "make_valid" in warned[0], result.stderr
    data = json.loads((tmp_path / "o" / "map_zones.json").read_text())
    by_name = {z["zone"]: z for z in data["zones"]}
    assert by_name["tie"]["valid_km2"] > 0  # both triangles of the bow tie counted


# -- lale change ----------------------------------------------------------------------------
@pytest.mark.parametrize("problem", ["disjoint", "disjoint-crs", "dtype"])
def test_change_of_maps_that_do_not_pair_is_one_line(tmp_path: Path, problem: str) -> None:
    a = write_class_map(tmp_path / "a.tif", MAP)
    b = tmp_path / "b.tif"
    if problem == "disjoint-crs":  # UTM numbers read as ETRS89-LAEA: somewhere else entirely
        write_class_map(b, MAP, crs="EPSG:3035")
    elif problem == "disjoint":
        far = Affine.translation(10_000, 0) * UTM_10M  # 10 km east: no pixel in common
        write_class_map(b, MAP, transform=far)
    else:
        write_geotiff(b, MAP[None].astype(np.float32), transform=UTM_10M)
    out = tmp_path / "o"
    line = _one_line(_invoke("change", a, b, "--out", out, "--no-progress"))
    assert str(b) in line, line
    assert {"disjoint-crs": "overlap", "disjoint": "overlap", "dtype": "float32"}[problem] in line
    assert not out.exists() or not list(out.iterdir())


def test_change_reprojects_a_map_in_another_crs_and_says_so(tmp_path: Path) -> None:
    from rasterio.warp import transform as warp

    a = write_class_map(tmp_path / "a.tif", MAP)
    (x,), (y,) = warp("EPSG:32635", "EPSG:3035", [X0], [Y0])
    laea = Affine(10, 0, x, 0, -10, y)  # the same ground, 10 m pixels in ETRS89-LAEA
    b = write_class_map(tmp_path / "b.tif", MAP, crs="EPSG:3035", transform=laea)
    out = tmp_path / "o"
    result = _invoke("change", a, b, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "b.tif reprojected from EPSG:3035 onto A's grid (nearest)" in result.stdout
    data = json.loads((out / "change.json").read_text())
    assert data["b_resampled_to_a_grid"] is True


# -- lale predict --model FILE.onnx ---------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_file(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = _invoke("export", "--run", run_dir, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    write_geotiff(path, rng.integers(0, 255, (3, 48, 40), dtype=np.uint8), transform=UTM_10M)
    return path


def _predict(model: Path, scene: Path, out: Path, *extra: str) -> Any:
    return _invoke("predict", scene, "--model", model, "--out", out, "--no-progress", *extra)


def _tampered(onnx_file: Path, tmp_path: Path, key: str, value: str | None) -> Path:
    import onnx

    model = onnx.load(str(onnx_file))
    props = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    for p in props:
        model.metadata_props.add(key=p.key, value=p.value)
    if value is not None:
        model.metadata_props.add(key=key, value=value)
    path = tmp_path / f"tampered-{key}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "problem", ["truncated", "not-onnx", "json", "config-json", "classes", "graph"]
)
def test_predict_with_a_bad_onnx_file_is_one_line(
    onnx_file: Path, scene: Path, tmp_path: Path, problem: str
) -> None:
    model = tmp_path / "model.onnx"
    expected = {
        "truncated": "not a model onnxruntime can load",
        "not-onnx": "not a model onnxruntime can load",
        "json": "metadata 'mean' is not valid JSON",
        "config-json": "metadata 'run_config' is not valid JSON",
        "classes": "metadata num_classes is 3 but its run config says 7",
        "graph": "the graph's output has 7 channels but its run config says 5",
    }[problem]
    if problem == "truncated":
        whole = onnx_file.read_bytes()
        model.write_bytes(whole[: len(whole) // 2])
    elif problem == "not-onnx":
        model.write_text("<html>404 not found</html>\n")
    elif problem == "json":
        model = _tampered(onnx_file, tmp_path, "mean", "[0.4, 0.4,")
    elif problem == "config-json":
        model = _tampered(onnx_file, tmp_path, "run_config", '{"model": "lale_t", ')
    elif problem == "classes":
        model = _tampered(onnx_file, tmp_path, "num_classes", "3")
    else:  # a run config of five classes on a seven-class graph
        from lale.inference.onnx.io import read_metadata

        config = read_metadata(onnx_file)["run_config"]
        config["class_schema"]["classes"] = config["class_schema"]["classes"][:5]
        config["num_classes"] = 5
        model = _tampered(onnx_file, tmp_path, "run_config", json.dumps(config))
        model = _tampered(model, tmp_path, "num_classes", "5")
    out = tmp_path / "o"
    line = _one_line(_predict(model, scene, out))
    assert str(model) in line and expected in line, line
    assert not out.exists() or not list(out.iterdir())


def test_predict_on_a_scene_of_other_bands_names_the_scene(onnx_file: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grey = tmp_path / "grey.tif"
    write_geotiff(grey, rng.integers(0, 255, (1, 40, 40), dtype=np.uint8), transform=UTM_10M)
    out = tmp_path / "o"
    result = _predict(onnx_file, grey, out)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()  # the input's line, then the run's summary
    assert lines[0] == (
        f"failed: {grey}: has 1 bands but the model takes 3 (trained on 3-band images); "
        "choose 3 with --bands"
    ), lines
    assert lines[-1] == "1 of 1 inputs failed: grey.tif", lines
    assert not out.exists() or not list(out.iterdir())


def _plain_onnx(path: Path, classes: int = 3) -> Path:
    """A segmentation ONNX written by another tool: torch's exporter, no lale metadata."""
    import torch

    net = torch.nn.Conv2d(3, classes, 1)
    torch.onnx.export(
        net, (torch.rand(1, 3, 32, 32),), str(path), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}}, dynamo=False,
    )  # fmt: skip
    return path


def test_predict_refuses_an_onnx_file_from_another_tool(scene: Path, tmp_path: Path) -> None:
    model = _plain_onnx(tmp_path / "plain.onnx")
    line = _one_line(_predict(model, scene, tmp_path / "o"))
    assert str(model) in line and "lale export" in line, line
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


# -- lale benchmark -------------------------------------------------------------------------
def test_benchmark_refuses_an_unknown_model_before_training(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["benchmark", "--data", data, "--out", out, "--steps", "2", "--seeds", "1"]
    line = _one_line(_invoke(*args, "--models", "lale_t,no_such_net,segformer_b0"))
    assert "no_such_net" in line, line
    assert not out.exists() or not list(out.rglob("*.safetensors"))


def test_benchmark_refuses_conflicting_budgets(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["benchmark", "--data", data, "--out", out, "--models", "lale_t", "--seeds", "1"]
    line = _one_line(_invoke(*args, "--steps", "2", "--epochs", "1"))
    assert "--steps" in line and "--epochs" in line, line
    assert not out.exists() or not list(out.iterdir())
