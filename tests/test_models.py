"""Contract tests run over every registered model, LALE and baselines alike."""

from __future__ import annotations

import pytest
import torch

import lale
from lale.models import create_model, list_models

ALL_MODELS = list_models()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_lists_both_families() -> None:
    assert {"lale_t", "lale_s", "lale_b", "lale_l"} <= set(list_models("lale"))
    assert "upernet" in list_models("baseline")
    assert lale.list_models() == ALL_MODELS


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("size", [(256, 256), (250, 198)])
def test_output_shape_and_finite(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=7).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 7, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("bands", [1, 4, 12])
def test_band_counts(name: str, bands: int) -> None:
    model = create_model(name, num_classes=5, in_channels=bands).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, bands, 96, 64))
    assert out.shape == (1, 5, 96, 64)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = create_model(name, num_classes=3).train()
    # batch 2: batch-norm layers refuse a single sample per channel in training mode
    out = model(torch.randn(2, 3, 128, 128))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached: {missing[:5]}"
    bad = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert not bad, f"non-finite gradients: {bad[:5]}"
