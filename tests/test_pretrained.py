"""ImageNet weights for baselines (``--pretrained``) and ``--init FILE.safetensors``, offline.

No test touches the network: a Hugging Face cache is written into a temporary folder holding
random "ImageNet" weights for SMP's efficientnet-b0, and ``HF_HUB_OFFLINE=1`` is set throughout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

from lale import cli
from lale.data.synthetic import write_dataset
from lale.models import create_model
from lale.runs import load_config, load_run
from lale.weights import save_weights

pytest.importorskip("segmentation_models_pytorch")

runner = CliRunner()
ENCODER = "efficientnet-b0"
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),  # inside Lightning
]


@pytest.fixture(autouse=True)
def hub_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache of this test's own, and no network."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def imagenet(hub_home: Path) -> dict[str, torch.Tensor]:
    """Random "ImageNet" weights for efficientnet-b0, placed where SMP 0.6 looks for them."""
    from segmentation_models_pytorch.encoders import encoders, get_encoder

    settings = encoders[ENCODER]["pretrained_settings"]["imagenet"]
    repo = "models--" + settings["repo_id"].replace("/", "--")
    snapshot = hub_home / "hub" / repo / "snapshots" / settings["revision"]
    snapshot.mkdir(parents=True)
    generator = torch.Generator().manual_seed(1)
    state = {
        k: (torch.randn(v.shape, generator=generator) if v.is_floating_point() else v).contiguous()
        for k, v in get_encoder(ENCODER, weights=None).state_dict().items()
    }
    safetensors.torch.save_file(state, snapshot / "model.safetensors")
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    return state


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=4, val=2, test=2, size=64, seed=0)
    return root


def _train(data: Path, out: Path, *extra: str) -> Any:
    """One step at learning rate 0: the parameters stay what they started from."""
    args = ["train", f"--data={data}", f"--out={out}", "--epochs=1", "--batch-size=2"]
    args += ["--crop-size=64", "--max-steps=1", "--lr=0", "--no-progress", *extra]
    return runner.invoke(cli.app, args)


def _one_line_error(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def _parameters(model: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach() for k, v in model.named_parameters()}


def test_create_model_loads_the_cached_imagenet_weights(imagenet: dict[str, torch.Tensor]) -> None:
    model = create_model("unet", num_classes=3, pretrained=True)
    encoder = model.model.encoder.state_dict()
    assert encoder.keys() == imagenet.keys()
    for name, tensor in imagenet.items():
        assert torch.equal(encoder[name], tensor), name
    # Four bands: SMP adapts the pretrained first convolution; the rest is loaded unchanged.
    four = create_model("unet", num_classes=3, in_channels=4, pretrained=True)
    stem = four.model.encoder.state_dict()
    assert stem["_conv_stem.weight"].shape[1] == 4
    assert torch.equal(stem["_blocks.0._bn1.weight"], imagenet["_blocks.0._bn1.weight"])
    # Without pretrained nothing is read from the cache.
    plain = create_model("unet", num_classes=3).model.encoder.state_dict()
    assert not torch.equal(plain["_blocks.0._bn1.weight"], imagenet["_blocks.0._bn1.weight"])


def test_cli_pretrained_trains_from_the_cached_weights_and_records_it(
    imagenet: dict[str, torch.Tensor], data: Path, tmp_path: Path, hub_home: Path
) -> None:
    out = tmp_path / "run"
    result = _train(data, out, "--model=unet", "--pretrained")
    assert result.exit_code == 0, result.output
    config = load_config(out / "config.json")
    assert config.recipe.pretrained is True
    assert "encoder_weights" not in config.model_kwargs and "pretrained" not in config.model_kwargs
    weights = safetensors.torch.load_file(out / "model.safetensors")
    trained = {k.removeprefix("model.encoder."): v for k, v in weights.items()}
    encoder = create_model("unet", num_classes=7).model.encoder
    for name in _parameters(encoder):
        assert torch.equal(trained[name], imagenet[name]), name
    # A run is rebuilt from its own weights: the cache is not needed any more.
    for path in sorted(hub_home.rglob("*"), reverse=True):
        path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
    model, _ = load_run(out)
    assert torch.equal(
        model.model.encoder._blocks[0]._bn1.weight, imagenet["_blocks.0._bn1.weight"]
    )


def test_cli_pretrained_without_cached_weights_is_one_line_exit_3(
    data: Path, tmp_path: Path
) -> None:
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[ENCODER]["pretrained_settings"]["imagenet"]
    start = time.monotonic()
    result = _train(data, tmp_path / "run", "--model=unet", "--pretrained")
    assert time.monotonic() - start < 10
    line = _one_line_error(result, 3)
    assert ENCODER in line and settings["repo_id"] in line and settings["revision"] in line
    assert f"hf download {settings['repo_id']} --revision" in line
    assert "HF_HOME" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_cli_pretrained_for_lale_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    line = _one_line_error(_train(data, tmp_path / "run", "--model=lale_t", "--pretrained"), 2)
    assert "no published ImageNet weights" in line and "--init" in line


def _tiny_args(tiny: dict[str, Any]) -> list[str]:
    return [f"--model-arg={k}={json.dumps(v)}" for k, v in tiny.items()]


def test_cli_init_from_a_safetensors_file(data: Path, tmp_path: Path) -> None:
    donor = create_model("lale_t", num_classes=7, **TINY)
    save_weights(donor, tmp_path / "donor.safetensors")
    out = tmp_path / "run"
    result = _train(data, out, f"--init={tmp_path / 'donor.safetensors'}", *_tiny_args(TINY))
    assert result.exit_code == 0, result.output
    assert load_config(out / "config.json").recipe.init == str(tmp_path / "donor.safetensors")
    model, _ = load_run(out)
    trained = _parameters(model)
    for name, tensor in _parameters(donor).items():
        assert torch.equal(trained[name], tensor), name


def test_cli_init_from_a_mismatching_file_is_one_line(data: Path, tmp_path: Path) -> None:
    other = create_model("lale_t", num_classes=7, **{**TINY, "decoder_dim": 8})
    save_weights(other, tmp_path / "other.safetensors")
    out = tmp_path / "run"
    result = _train(data, out, f"--init={tmp_path / 'other.safetensors'}", *_tiny_args(TINY))
    line = _one_line_error(result, 2)
    assert "other.safetensors" in line and "of another shape" in line
    assert not (out / "config.json").exists()


def test_timm_encoders_load_from_the_cache_too(hub_home: Path) -> None:
    import timm

    from lale.models.pretrained import HubFile, pretrained_files

    (file,) = pretrained_files("tu-fastvit_t8")
    assert file == HubFile("timm/fastvit_t8.apple_in1k", "model.safetensors", None)
    repo = hub_home / "hub" / ("models--" + file.repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    state = {k: v + 1 for k, v in timm.create_model("fastvit_t8").state_dict().items()}
    safetensors.torch.save_file(state, snapshot / file.filename)
    model = create_model("fastvit_t8", num_classes=3, pretrained=True)
    loaded = model.model.encoder.model.state_dict()  # timm's feature wrapper: "stem_0.…"
    assert torch.equal(
        loaded["stem_0.conv_kxk.0.conv.weight"], state["stem.0.conv_kxk.0.conv.weight"]
    )


def test_encoders_without_imagenet_weights_are_usage_errors() -> None:
    with pytest.raises(ValueError, match="no pretrained weights for 'maxvit_tiny_rw_256'"):
        create_model("maxvit_tiny", pretrained=True)
