"""lale's exported files in the tools practitioners run them with: QGIS Deepness and GeoDeep.

``lale export --clients`` writes ``model.clients.onnx`` (lale.inference.onnx.clients). Here
it is run by GeoDeep itself (``pip install geodeep``, tested with 0.9.13) and by the model
wrapper of the QGIS Deepness plugin, restated below line for line from its source with only
QGIS left out (github.com/PUTvision/qgis-plugin-deepness at commit f450c63:
src/deepness/processing/models/model_base.py, segmentor.py, preprocessing_utils.py,
src/deepness/processing/map_processor/map_processor_segmentation.py ``_process_tile``). Both must
give the class map ``lale predict --model`` gives.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from lale import cli
from tests.rasters import UTM_10M, write_geotiff

ort = pytest.importorskip("onnxruntime")
runner = CliRunner()
TILE = 64  # a small fixed tile keeps the exports and the client runs quick

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
    pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'"),
    pytest.mark.filterwarnings("ignore:is_tiled will be removed"),
]


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(default file, clients file)`` of the untrained lale_t run, through ``lale export``."""
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    args = ["export", "--run", str(run_dir), "--out", str(out), "--clients"]
    result = runner.invoke(cli.app, [*args, "--clients-tile", str(TILE)])
    assert result.exit_code == 0, result.output
    clients = out.with_name("model.clients.onnx")
    assert f"wrote {clients}: for QGIS Deepness and GeoDeep" in result.output
    return out, clients


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-bit RGB GeoTIFF of flat colour blocks with some noise: regions a model maps whole."""
    rng = np.random.default_rng(0)
    h, w = 150, 170
    blocks = rng.integers(0, 256, (3, 5, 6)).astype(np.float64)
    image = blocks.repeat(32, axis=1).repeat(32, axis=2)[:, :h, :w]
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    write_geotiff(path, image, transform=UTM_10M)
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [rasterio.enums.ColorInterp[c] for c in ("red", "green", "blue")]
    return path


def _lale_map(model: Path, scene: Path, out: Path, *extra: str) -> np.ndarray:
    args = ["predict", str(scene), "--model", str(model), "--out", str(out), "--no-progress"]
    result = runner.invoke(cli.app, [*args, *extra])
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "scene_classes.tif") as src:
        return np.asarray(src.read(1))


def test_the_clients_file_has_the_clients_conventions(exported: tuple[Path, Path]) -> None:
    _, clients = exported
    session = ort.InferenceSession(str(clients), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.shape[1:] == [3, TILE, TILE] and isinstance(inp.shape[0], str)
    assert (out.name, out.shape[1:]) == ("probabilities", [7, TILE, TILE])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["model_type"]) == "Segmentor"
    assert json.loads(meta["tile_size"]) == json.loads(meta["tiles_size"]) == TILE
    assert json.loads(meta["standardization_mean"]) == [0.0] * 3
    assert json.loads(meta["standardization_std"]) == [1.0] * 3
    assert json.loads(meta["seg_thresh"]) == 0.0 and json.loads(meta["seg_small_segment"]) == 0
    x = np.random.default_rng(0).random((2, 3, TILE, TILE), dtype=np.float32)
    p = session.run(None, {inp.name: x})[0]
    assert p.min() >= 0 and np.allclose(p.sum(axis=1), 1, atol=1e-5)


def test_lale_predict_maps_the_clients_file_as_the_default_one(
    exported: tuple[Path, Path], scene: Path, tmp_path: Path
) -> None:
    default, clients = exported
    tile = ("--tile", str(TILE), "--overlap", "16")
    a = _lale_map(default, scene, tmp_path / "a", *tile)
    b = _lale_map(clients, scene, tmp_path / "b", *tile)
    assert np.mean(a == b) > 0.999
    result = runner.invoke(
        cli.app, ["predict", str(scene), "--model", str(clients), "--out", str(tmp_path / "c")]
    )  # the default --tile 256 is larger than the file's fixed 64
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --tile 256: {clients} takes windows of at most {TILE} px; use --tile {TILE}"
    )


def test_clients_is_refused_for_a_run_not_trained_on_8bit(
    tmp_path: Path,
) -> None:
    import torch

    from lale.data.schema import ARAS400K, ImageSpec
    from lale.models import create_model
    from lale.runs import RunConfig, save_run

    schema = dataclasses.replace(ARAS400K, image=ImageSpec(dtype="uint16", scale=10000.0))
    run = tmp_path / "run"
    torch.manual_seed(0)
    save_run(run, create_model("lale_t", 7, 3), RunConfig.from_schema("lale_t", schema))
    result = runner.invoke(cli.app, ["export", "--run", str(run), "--clients"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: --clients: this run reads uint16 samples")
    assert not list(run.glob("*.onnx"))  # refused before the default export


# -- GeoDeep ------------------------------------------------------------------------------
def test_geodeep_runs_the_clients_file_as_lale_does(
    exported: tuple[Path, Path], scene: Path, tmp_path: Path
) -> None:
    geodeep = pytest.importorskip("geodeep")
    from geodeep.inference import create_session
    from geodeep.segmentation import execute_segmentation

    from lale.inference.onnx.backend import OnnxBackend

    _, clients = exported
    # One tile through GeoDeep's own loading and segmentation code: exactly lale's classes.
    session, config = create_session(str(clients), max_threads=1)
    assert (config["model_type"], config["tiles_size"], config["seg_thresh"]) == (
        "Segmentor",
        TILE,
        0.0,
    )
    with rasterio.open(scene) as src:
        tile = src.read(window=((40, 40 + TILE), (50, 50 + TILE)))
    theirs = execute_segmentation(tile, session, config)[0]
    backend = OnnxBackend(clients)
    mean = np.array(backend.metadata["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.array(backend.metadata["std"], np.float32).reshape(1, 3, 1, 1)
    ours = backend((tile[None] / np.float32(255.0) - mean) / std).argmax(axis=1)[0]
    assert np.mean(theirs == ours) > 0.999
    # The whole scene through geodeep.segment against lale predict --model on the same file.
    mask = geodeep.segment(str(scene), str(clients), output_type="raw", max_threads=1)
    whole = _lale_map(clients, scene, tmp_path / "o", "--tile", str(TILE), "--overlap", "16")
    assert mask.shape == whole.shape
    # GeoDeep pastes the centres of tiles overlapping by the file's tiles_overlap (25 %: 16 px,
    # which lale blends instead), reads past the scene's edge as zeros (lale reflects) and
    # smooths its mask with a 5×5 median filter. An untrained network, whose classes hang on
    # context, differs on many pixels that way (a trained one on 0.3 %: benchmarks/clients.py).
    assert float(np.mean(mask == whole)) > 0.75
    features = json.loads(
        geodeep.segment(str(scene), str(clients), output_type="geojson", max_threads=1)
    )["features"]
    names = {f["properties"]["class"] for f in features}
    assert names and names <= {"Tree", "Shrub", "Grass", "Crop", "Built-up", "Barren", "Water"}


# -- QGIS Deepness --------------------------------------------------------------------------
class DeepnessSegmentor:
    """Deepness' ModelBase + Segmentor as they load and run a model (QGIS not needed there)."""

    def __init__(self, model_file_path: str) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(
            model_file_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.sess.get_inputs()
        if len(inputs) > 1:
            raise Exception("ONNX model: unsupported number of inputs")
        self.input_shape = inputs[0].shape
        self.input_name = inputs[0].name
        self.outputs_layers = self.sess.get_outputs()
        meta = self.sess.get_modelmeta().custom_metadata_map
        self.meta = meta
        self.mean = np.zeros(self.input_shape[-3], np.float32)
        self.std = np.ones(self.input_shape[-3], np.float32)
        if "standardization_mean" in meta and "standardization_std" in meta:
            self.mean = np.array(
                [float(x) for x in json.loads(meta["standardization_mean"])], np.float32
            )
            self.std = np.array(
                [float(x) for x in json.loads(meta["standardization_std"])], np.float32
            )
        self.outputs_names = self._channel_names()
        self.outputs_are_sigmoid = [
            True if len(o.shape) == 3 else o.shape[-3] == 1 for o in self.outputs_layers
        ]

    def _channel_names(self) -> list[list[str]] | None:
        for name in ("class_names", "names"):
            if name not in self.meta:
                continue
            txt = self.meta[name]
            try:
                class_names = json.loads(txt)
            except json.decoder.JSONDecodeError:
                class_names = ast.literal_eval(txt)
            if isinstance(class_names, dict):
                class_names = [class_names]
            all_names = []
            for cn in class_names:
                output_names = []
                for counter, (key, value) in enumerate(
                    sorted(cn.items(), key=lambda kv: int(kv[0]))
                ):
                    if int(key) != counter:
                        raise Exception("Class names in the model metadata are not consecutive")
                    output_names.append(value)
                all_names.append(output_names)
            return all_names
        return None

    def metadata_value(self, name: str) -> Any:
        return json.loads(self.meta[name]) if name in self.meta else None

    def process(self, tiles_batched: np.ndarray) -> list[np.ndarray]:
        """``ModelBase.process``: (N, H, W, C) uint8 RGB tiles → the model's outputs."""
        x = tiles_batched[:, :, :, : self.input_shape[-3]]
        x = np.float32(x * 1.0 / 255.0)
        x = (x - self.mean) / self.std
        x = np.transpose(x, (0, 3, 1, 2))
        return list(self.sess.run(output_names=None, input_feed={self.input_name: x}))


def deepness_process_tile(model: DeepnessSegmentor, tiles: np.ndarray, threshold: float) -> Any:
    """``MapProcessorSegmentation._process_tile``: the class of each pixel (+1, Deepness' MADD1)."""
    many_outputs = []
    for result in model.process(tiles):
        result[result < threshold] = 0.0
        if len(result.shape) == 3:
            result = np.expand_dims(result, axis=1)
        if result.shape[1] == 1:
            result = (result != 0).astype(int) + 1
        else:
            shape = result.shape
            result = np.argmax(result, axis=1).reshape(shape[0], 1, shape[2], shape[3]) + 1
        many_outputs.append(result[:, 0])
    return np.array(many_outputs).transpose((1, 0, 2, 3))


def test_deepness_loads_the_clients_file_and_maps_it_as_lale_does(
    exported: tuple[Path, Path], scene: Path
) -> None:
    from lale.inference.onnx.backend import OnnxBackend

    _, clients = exported
    model = DeepnessSegmentor(str(clients))
    assert model.metadata_value("model_type") == "Segmentor"
    assert model.input_shape[-3:] == [3, TILE, TILE]  # channels and the tile it crops
    assert model.metadata_value("tile_size") == TILE
    assert model.outputs_names == [
        ["Tree", "Shrub", "Grass", "Crop", "Built-up", "Barren", "Water"]
    ]
    assert model.outputs_are_sigmoid == [False]
    # The threshold the plugin offers by default is the file's seg_thresh (0: none).
    threshold = float(model.metadata_value("seg_thresh"))
    with rasterio.open(scene) as src:
        tiles = np.stack(
            [src.read(window=((r, r + TILE), (c, c + TILE))) for r, c in ((0, 0), (64, 96))]
        )
    nhwc = tiles.transpose(0, 2, 3, 1)  # Deepness reads layers as (N, H, W, C) uint8
    classes = deepness_process_tile(model, nhwc, threshold)[:, 0] - 1
    backend = OnnxBackend(clients)
    mean = np.array(backend.metadata["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.array(backend.metadata["std"], np.float32).reshape(1, 3, 1, 1)
    ours = backend((tiles / np.float32(255.0) - mean) / std).argmax(axis=1)
    assert np.mean(classes == ours) > 0.999


def test_deepness_default_threshold_breaks_logit_files_not_the_clients_file(
    exported: tuple[Path, Path], scene: Path
) -> None:
    """Why the clients file exists: Deepness' 0.5 threshold means something only for
    probabilities. On the default file's logits it turns pixels into class 0 that are not."""
    default, clients = exported
    with rasterio.open(scene) as src:
        tile = src.read(window=((0, TILE), (0, TILE)))[None].transpose(0, 2, 3, 1)
    deepness_default = DeepnessSegmentor(str(default))
    logits = deepness_default.process(tile)[0]
    wrong = deepness_process_tile(deepness_default, tile, 0.5)[:, 0] - 1
    right = logits.argmax(axis=1)
    low = logits.max(axis=1) < 0.5  # pixels whose best logit is under 0.5 all become class 0
    assert low.any() and np.all(wrong[low] == 0)
    probabilities = deepness_process_tile(DeepnessSegmentor(str(clients)), tile, 0.0)[:, 0] - 1
    assert np.mean(probabilities == right) > 0.999
