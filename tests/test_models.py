"""Contract tests run over every registered model, LALE and baselines alike."""

from __future__ import annotations

import pytest
import torch

import lale
from lale.models import create_model, list_models

ALL_MODELS = list_models()
# The paper's DeiT3-Base and MaxViT-Tiny (≈ 35 GMACs at 256² each) are too slow to run forward
# and backward on CPU in the suite; their sizes are pinned on the meta device (test_baselines.py).
HEAVY = frozenset({"deit3_base", "maxvit_tiny"})
# SMP's efficientnet-b0 encoder keeps EfficientNet's classification head (conv + norm) in the
# module, but no feature map passes through it: it counts as parameters and gets no gradient.
UNUSED_HEAD = ("model.encoder._conv_head.", "model.encoder._bn1.")
RUNNABLE = [name for name in ALL_MODELS if name not in HEAVY]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_lists_both_families() -> None:
    assert {"lale_t", "lale_s", "lale_b", "lale_l", "lale_s1", "lale_s2"} <= set(
        list_models("lale")
    )
    assert {"upernet", "unet", "segformer", "deit3_base", "maxvit_tiny"} <= set(
        list_models("baseline")
    )
    assert set(ALL_MODELS) >= HEAVY
    assert lale.list_models() == ALL_MODELS


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("size", [(256, 256), (250, 198)])
def test_output_shape_and_finite(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=7).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 7, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("bands", [1, 4, 12])
def test_band_counts(name: str, bands: int) -> None:
    model = create_model(name, num_classes=5, in_channels=bands).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, bands, 96, 64))
    assert out.shape == (1, 5, 96, 64)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = create_model(name, num_classes=3).train()
    # batch 2: batch-norm layers refuse a single sample per channel in training mode
    out = model(torch.randn(2, 3, 128, 128))
    out.square().mean().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None and not n.startswith(UNUSED_HEAD)
    ]
    assert not missing, f"no gradient reached: {missing[:5]}"
    bad = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert not bad, f"non-finite gradients: {bad[:5]}"
