"""TopFormer and SeaFormer against their papers; every frontier network through export and predict.

SegFormer-B0 runs through the same export check: its export needs torch's suggested-fix printer
kept from failing (``lale.inference.onnx.export``).

The papers' "FLOPs" come from mmcv's ``get_flops``, which counts module by module: convolutions
(multiply-adds, plus one per output for a bias), BatchNorm (two per element) and activations
(one per element), and nothing called functionally, so not the attention's matrix products.
``mmcv_style_gflops`` counts that way, to show that the published figures follow from our
networks under their counter's rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasters import write_geotiff
from torch import nn
from typer.testing import CliRunner

from lale.cli import app
from lale.data.schema import ARAS400K
from lale.models import create_model
from lale.models.frontier.topformer import Block, TopFormer
from lale.models.registry import list_models
from lale.profiling.counting import count_macs, count_parameters, meta_weights
from lale.run_config import RunConfig
from lale.runs import save_run
from tests.batchnorm import randomise_batchnorm

MODELS = ("topformer_t", "topformer_s", "seaformer_t", "seaformer_s")
# Pinned at num_classes=7, in_channels=3: a change means the architecture changed.
PARAM_COUNTS = {
    "topformer_t": 1_371_207,
    "topformer_s": 3_007_063,
    "seaformer_t": 1_653_447,
    "seaformer_s": 3_971_671,
}
GMACS_256 = {
    "topformer_t": 0.1142,
    "topformer_s": 0.2491,
    "seaformer_t": 0.1271,
    "seaformer_s": 0.2409,
}
# (name, classes, input, published params, published G, ours: params, GMACs, mmcv-style G).
# TopFormer: Zhang et al. (CVPR 2022) Table 1; SeaFormer: Wan et al. (ICLR 2023) and the authors'
# README; both ADE20K (150 classes) at 512×512.
PUBLISHED = [
    ("topformer_t", 150, 512, 1.4e6, 0.6, 1_389_654, 0.5341, 0.5765),
    ("topformer_s", 150, 512, 3.1e6, 1.2, 3_034_662, 1.1123, 1.1646),
    ("seaformer_t", 150, 512, 1.7e6, 0.6, 1_667_318, 0.5626, 0.6080),
    ("seaformer_s", 150, 512, 4.0e6, 1.1, 3_990_118, 1.0309, 1.0876),
]


def _meta(name: str, classes: int = 7) -> nn.Module:
    with meta_weights():
        return create_model(name, num_classes=classes, in_channels=3)


def mmcv_style_gflops(model: nn.Module, size: int) -> float:
    """G counted by mmcv's rules (see the module docstring), on a zero input."""
    total = 0

    def hook(module: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups
            per_output *= module.kernel_size[0] * module.kernel_size[1]
            total += out.numel() * (per_output + (module.bias is not None))
        elif isinstance(module, nn.BatchNorm2d):
            total += 2 * out.numel()
        elif isinstance(module, nn.ReLU | nn.ReLU6 | nn.Hardswish | nn.Hardsigmoid | nn.Sigmoid):
            total += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return total / 1e9


@pytest.mark.parametrize("name", MODELS)
def test_pinned_size_at_lale_defaults(name: str) -> None:
    model = _meta(name)
    assert count_parameters(model) == PARAM_COUNTS[name]
    assert count_macs(model, 256, 3) / 1e9 == pytest.approx(GMACS_256[name], abs=1e-3)


@pytest.mark.parametrize(
    ("name", "classes", "size", "params", "gflops", "ours", "our_gmacs", "mmcv_g"), PUBLISHED
)
def test_published_size(
    name: str,
    classes: int,
    size: int,
    params: float,
    gflops: float,
    ours: int,
    our_gmacs: float,
    mmcv_g: float,
) -> None:
    model = _meta(name, classes)
    assert count_parameters(model) == ours
    assert ours == pytest.approx(params, rel=0.05)
    assert count_macs(model, size, 3) / 1e9 == pytest.approx(our_gmacs, abs=1e-3)
    # Counted by the source's rules, ours rounds to the published one-decimal figure.
    real = create_model(name, num_classes=classes, in_channels=3)
    counted = mmcv_style_gflops(real, size)
    assert counted == pytest.approx(mmcv_g, abs=1e-3)
    assert round(counted, 1) == gflops


def test_topformer_blocks_start_as_the_identity_and_take_any_size() -> None:
    torch.manual_seed(0)
    model = create_model("topformer_t", num_classes=5, in_channels=4).eval()
    core = model.model
    assert isinstance(core, TopFormer)
    for block in core.transformer:
        assert isinstance(block, Block)
        bn = [m for m in block.attn.proj.modules() if isinstance(m, nn.BatchNorm2d)]
        assert len(bn) == 1 and torch.count_nonzero(bn[0].weight) == 0  # as the authors' init
    with torch.inference_mode():
        assert model(torch.randn(1, 4, 70, 130)).shape == (1, 5, 70, 130)
    assert core.pools == (16, 8, 4, 2)  # every level pooled to 1/64 by a whole kernel


def _classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*list_models(family="frontier"), "segformer"])
def test_every_frontier_network_exports_and_predicts_from_its_onnx_file(
    name: str, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model(name, ARAS400K.num_classes, 3)
    randomise_batchnorm(model)
    run = save_run(tmp_path / "run", model, RunConfig.from_schema(name, ARAS400K))
    runner = CliRunner()
    onnx_file = tmp_path / f"{name}.onnx"
    exported = runner.invoke(app, ["export", f"--run={run}", f"--out={onnx_file}"])
    assert exported.exit_code == 0, exported.output  # export checks parity < 1e-4 at odd sizes
    assert onnx_file.is_file()
    rng = np.random.default_rng(0)
    scene = write_geotiff(tmp_path / "scene.tif", rng.integers(1, 255, (3, 150, 170), np.uint8))
    options = ["--tile", "128", "--overlap", "32", "--no-progress"]
    edge = runner.invoke(
        app,
        ["predict", "--model", str(onnx_file), str(scene), "--out", str(tmp_path / "e"), *options],
    )
    assert edge.exit_code == 0, edge.output
    ref = runner.invoke(
        app, ["predict", "--run", str(run), str(scene), "--out", str(tmp_path / "r"), *options]
    )
    assert ref.exit_code == 0, ref.output
    got = _classes(tmp_path / "e" / "scene_classes.tif")
    want = _classes(tmp_path / "r" / "scene_classes.tif")
    assert got.shape == want.shape == (150, 170)
    # ONNX Runtime and PyTorch differ in the last bits; an argmax may flip where two classes tie.
    assert (got == want).mean() > 0.999
    metadata = json.loads((tmp_path / "e" / "scene_areas.json").read_text())
    assert metadata["valid_pixels"] == 150 * 170


def test_lale_models_lists_every_frontier_network() -> None:
    result = CliRunner().invoke(app, ["models", "--family", "frontier"])
    assert result.exit_code == 0, result.output
    names = set(list_models(family="frontier"))
    assert {"topformer_t", "topformer_s", "seaformer_t", "seaformer_s"} <= names
    assert "unetformer" in names and "efficientvit_seg_b0" in names
    for name in names:
        assert name in result.output
