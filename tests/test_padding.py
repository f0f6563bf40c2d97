"""The one padding rule and how models declare their input padding."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from torch import nn

from lale.models import get_entry
from lale.models.baselines import AnySize
from lale.models.network import LALE_B, LALE_L, LALE_S, LALE_T, Lale
from lale.models.padding import InputPadding, pad_bottom_right, pad_mode, pad_to_multiple


@pytest.mark.parametrize(
    ("pads", "mode"),
    [((0, 0, 5, 5), "reflect"), ((4, 4, 5, 5), "reflect"), ((5, 1, 5, 5), "replicate")],
)
def test_reflect_unless_a_pad_reaches_its_side(pads: tuple[int, int, int, int], mode: str) -> None:
    assert pad_mode(*pads) == mode


def test_pad_bottom_right_follows_the_rule() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert pad_bottom_right(x, 0, 0) is x
    reflected = pad_bottom_right(x, 2, 1)
    assert torch.equal(reflected[..., 3, :4], x[..., 1, :])  # row 3 mirrors row 1
    replicated = pad_bottom_right(x, 3, 0)
    assert torch.equal(replicated[..., 5, :], x[..., 2, :])  # the last row repeated
    assert pad_to_multiple(x, 8).shape[-2:] == (8, 8)


def test_input_padding_sizes() -> None:
    assert InputPadding(32).padded_size(33) == 64 and InputPadding(32).any_size
    bounded = InputPadding(32, min_size=256, max_size=256)
    assert bounded.padded_size(10) == 256 and not bounded.any_size
    with pytest.raises(ValueError, match="fixed size 256"):
        bounded.padded_size(257)


def test_models_declare_their_padding() -> None:
    assert Lale.input_padding == InputPadding(multiple=Lale.output_stride)
    wrapped = AnySize(nn.Identity(), multiple=16, min_size=64)
    assert wrapped.input_padding == InputPadding(16, 64, None)


def test_variants_are_the_registered_constants() -> None:
    variants = {"lale_t": LALE_T, "lale_s": LALE_S, "lale_b": LALE_B, "lale_l": LALE_L}
    for name, config in variants.items():
        assert dict(get_entry(name).defaults) == asdict(config)
