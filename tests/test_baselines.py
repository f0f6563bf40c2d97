"""Every registered baseline: shapes at any size, band counts, gradients, errors, no network."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest
import torch
from torch import nn

from lale import _torchvision_compat
from lale.models import create_model, get_entry, list_models
from lale.models.baselines import ARCHITECTURES, SUGGESTED_ENCODERS, AnySize
from lale.models.registry import UnknownModelError
from lale.profiling.counting import meta_weights

_torchvision_compat.install()
pytest.importorskip("segmentation_models_pytorch")

BASELINES = list_models("baseline")
# Pinned at num_classes=7, in_channels=3 (SMP 0.6.0, timm 1.0.31): a change means the
# architecture changed, and results recorded under the old count no longer describe it.
PARAM_COUNTS = {
    "unet": 6_252_339,
    "unetplusplus": 6_570_451,
    "linknet": 4_167_367,
    "fpn": 5_760_259,
    "pan": 4_100_394,
    "deeplabv3": 7_306_115,
    "deeplabv3plus": 4_909_011,
    "upernet": 11_614_563,
    "segformer": 3_715_943,
    "fastvit_t8": 3_621_735,
    "maxvit_nano": 15_530_539,
    "efficientvit_b0": 1_009_527,
    "mobilenetv4_small": 1_896_039,
    "mit_b0": 3_715_943,
    "swinv2_tiny": 28_210_737,
    "efficientformerv2_s0": 3_602_455,
    "deit3_small": 42_655_175,
    "deit3_base": 112_365_607,
    "maxvit_tiny": 59_629_919,
}
# The paper's heavy rows (≈ 35 GMACs at 256²): built with meta weights here, never run on CPU.
HEAVY = frozenset({"deit3_base", "maxvit_tiny"})


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, nn.Module], list[Any]]:
    """Every baseline at its defaults, built while any network access is refused and logged."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network access while building a model")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        models = {name: create_model(name).eval() for name in BASELINES if name not in HEAVY}
        with meta_weights():
            models.update({name: create_model(name) for name in HEAVY})
    return models, attempts


def test_every_baseline_is_registered() -> None:
    assert set(ARCHITECTURES) <= set(BASELINES)
    assert set(BASELINES) == set(PARAM_COUNTS)
    assert all(get_entry(name).requires == "baselines" for name in BASELINES)


def test_building_touches_no_network(built: tuple[dict[str, nn.Module], list[Any]]) -> None:
    models, attempts = built
    assert attempts == []
    assert set(models) == set(BASELINES)


@pytest.mark.parametrize("name", BASELINES)
def test_param_count(name: str, built: tuple[dict[str, nn.Module], list[Any]]) -> None:
    assert sum(p.numel() for p in built[0][name].parameters()) == PARAM_COUNTS[name]


def test_default_encoders_are_declared() -> None:
    for name in ARCHITECTURES:
        expected = "mit_b0" if name == "segformer" else "efficientnet-b0"
        assert get_entry(name).defaults["encoder_name"] == expected


def test_encoder_by_name_syntax_or_keyword() -> None:
    by_name = create_model("fpn:mobilenet_v2")
    by_keyword = create_model("fpn", encoder_name="mobilenet_v2")
    assert isinstance(by_name, AnySize)
    assert type(by_name.model.encoder) is type(by_keyword.model.encoder)
    assert type(by_name.model.encoder).__name__ == "MobileNetV2Encoder"
    assert sum(p.numel() for p in by_name.parameters()) == sum(
        p.numel() for p in by_keyword.parameters()
    )
    # A timm encoder by name, under a decoder other than its registered one.
    swin = create_model("upernet:tu-swinv2_tiny_window8_256").eval()
    with torch.inference_mode():
        assert swin(torch.randn(1, 3, 64, 96)).shape == (1, 7, 64, 96)


@pytest.mark.parametrize(
    "name, why",
    [
        ("linknet:mit_b0", "1/2-scale"),
        ("unetplusplus:mit_b0", "1/2-scale"),
        ("deeplabv3:tu-fastvit_t8", "dilated"),
        ("pan:tu-efficientvit_b0", "dilated"),
        ("unet:resnet9000", "not an SMP encoder"),
        ("segformer:tu-no_such_model", "timm has no such model"),
        ("upernet:tu-deit3_small_patch16_224", "feature pyramid"),
    ],
)
def test_incompatible_encoder_error(name: str, why: str) -> None:
    arch, encoder = name.split(":")
    with pytest.raises(ValueError) as info:
        create_model(name)
    message = str(info.value)
    assert "\n" not in message
    for part in (repr(arch), repr(encoder), why, *SUGGESTED_ENCODERS):
        assert part in message


def test_suggested_encoders_serve_every_architecture() -> None:
    for arch in ARCHITECTURES:
        for encoder in SUGGESTED_ENCODERS:
            create_model(arch, encoder_name=encoder)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        create_model("unet3000")
    assert all(name in str(info.value) for name in ("unet", "segformer", "fastvit_t8"))


def test_pretrained_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="encoder_weights"):
        create_model("unet", encoder_weights="imagenet")


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)
    with pytest.raises(ImportError, match=r"pip install 'lale\[baselines\]'"):
        create_model("unet")


def test_any_size_pads_and_crops() -> None:
    seen: list[tuple[int, ...]] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape[-2:]))
            return x

    x = torch.randn(1, 2, 250, 30)
    out = AnySize(Probe(), multiple=32, min_size=64)(x)
    assert seen == [(256, 64)]
    assert torch.equal(out, x)
    fixed = AnySize(Probe(), min_size=256, max_size=256)
    assert fixed(torch.randn(1, 1, 10, 256)).shape == (1, 1, 10, 256)
    with pytest.raises(ValueError, match="fixed size 256"):
        fixed(torch.randn(1, 1, 257, 10))
