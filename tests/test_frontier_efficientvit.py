"""EfficientViT-Seg and UNetFormer: sizes against their papers, the auxiliary head, ONNX export.

Shapes, band counts and gradients of every registered model are tested in test_models.py.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from lale import _torchvision_compat
from lale.data.schema import ARAS400K
from lale.models import create_model
from lale.profiling.counting import count_macs, count_parameters, meta_weights
from lale.recipe import Recipe
from lale.training.module import AUX_LOSS_WEIGHT, SegmentationTask, take_aux_logits
from tests.batchnorm import randomise_batchnorm

_torchvision_compat.install()
pytest.importorskip("timm")

MODELS = ("efficientvit_seg_b0", "efficientvit_seg_b1", "unetformer")
# Pinned at num_classes=7, in_channels=3 (timm 1.0.31): a change means the architecture
# changed, and results recorded under the old count no longer describe it.
PARAM_COUNTS = {
    "efficientvit_seg_b0": 705_143,
    "efficientvit_seg_b1": 4_800_359,
    "unetformer": 11_677_418,
}
GMACS_256 = {"efficientvit_seg_b0": 0.1357, "efficientvit_seg_b1": 0.7814, "unetformer": 2.9224}
# (name, overrides, classes, input size, published params, published GMACs, ours: params, GMACs).
# EfficientViT-Seg: Cai et al. (ICCV 2023) and their README, Cityscapes 1024×2048 and ADE20K
# 512×512; UNetFormer: Wang et al. (2022), UAVid (8 classes) at 1024×1024, "46.9 G" a MAC count.
PUBLISHED = [
    ("efficientvit_seg_b0", {}, 19, (1024, 2048), 0.7e6, 4.4, 706_691, 4.3914),
    ("efficientvit_seg_b1", {}, 19, (1024, 2048), 4.8e6, 25.3, 4_803_443, 25.1050),
    ("efficientvit_seg_b1", {"final_expand": 0}, 150, (512, 512), 4.8e6, 3.1, 4_791_414, 3.0904),
    ("unetformer", {}, 8, (1024, 1024), 11.7e6, 46.9, 11_677_483, 46.7621),
]


def _meta(name: str, classes: int = 7, **overrides: object) -> nn.Module:
    with meta_weights():
        return create_model(name, num_classes=classes, in_channels=3, **overrides)


@pytest.mark.parametrize("name", MODELS)
def test_pinned_size_at_lale_defaults(name: str) -> None:
    model = _meta(name)
    assert count_parameters(model) == PARAM_COUNTS[name]
    assert count_macs(model, 256, 3) / 1e9 == pytest.approx(GMACS_256[name], abs=1e-3)


@pytest.mark.parametrize(
    ("name", "overrides", "classes", "size", "params", "gmacs", "ours", "our_gmacs"), PUBLISHED
)
def test_published_size(
    name: str,
    overrides: dict[str, object],
    classes: int,
    size: tuple[int, int],
    params: float,
    gmacs: float,
    ours: int,
    our_gmacs: float,
) -> None:
    model = _meta(name, classes, **overrides)
    assert count_parameters(model) == ours
    assert ours == pytest.approx(params, rel=0.05)
    macs = count_macs(model, size, 3) / 1e9
    assert macs == pytest.approx(our_gmacs, abs=1e-3)
    assert macs == pytest.approx(gmacs, rel=0.05)


def test_aux_head_is_training_only() -> None:
    torch.manual_seed(0)
    with_aux = create_model("unetformer", 7, 3, aux_head=True).train()
    x = torch.randn(2, 3, 90, 70)
    assert with_aux(x).shape == (2, 7, 90, 70)
    aux = with_aux.model.aux_logits
    assert aux is not None and aux.shape == (2, 7, 96, 96)  # the core's (padded) input size

    plain = create_model("unetformer", 7, 3)  # the same main path, loaded after training mode
    missing, unexpected = plain.load_state_dict(with_aux.state_dict(), strict=False)
    assert (
        not missing and unexpected and all(k.startswith("model.decoder.aux.") for k in unexpected)
    )
    with_aux.eval()
    plain.eval()
    with torch.inference_mode():
        assert torch.equal(with_aux(x), plain(x))
    assert with_aux.model.aux_logits is None and plain.model.aux_logits is None
    plain.train()(x)
    assert plain.model.aux_logits is None


class _NoAugment(nn.Module):
    """Stands in for the training transform: the batch as it is."""

    generator: torch.Generator | None = None

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return image, mask


def test_training_step_adds_the_weighted_aux_loss() -> None:
    torch.manual_seed(0)
    task = SegmentationTask(
        "unetformer", {"aux_head": True, "dropout": 0.0}, ARAS400K, Recipe(loss="ce")
    )
    task.train_transform = _NoAugment()  # type: ignore[assignment]
    x = torch.randn(2, 3, 70, 90)
    y = torch.randint(0, ARAS400K.num_classes, (2, 70, 90))
    with pytest.warns(UserWarning, match="self.log"):  # no trainer attached
        loss = task.training_step((x, y), 0)
    assert take_aux_logits(task.net) is None  # consumed by the step

    logits = task.net(x)
    aux = take_aux_logits(task.net)
    assert aux is not None
    main = task.loss_fn(logits, y)
    expected = main + AUX_LOSS_WEIGHT * task.loss_fn(aux[..., :70, :90], y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() > main.item()


@pytest.mark.slow
def test_unetformer_exports_to_onnx_without_its_aux_head(tmp_path: Path) -> None:
    from lale.inference.onnx.export import export_onnx
    from lale.inference.onnx.io import OUTPUT_NAME
    from lale.runs import RunConfig, save_run

    torch.manual_seed(0)
    model = create_model("unetformer", 7, 3, aux_head=True)
    randomise_batchnorm(model)
    config = RunConfig.from_schema("unetformer", ARAS400K, model_overrides={"aux_head": True})
    run = save_run(tmp_path / "run", model, config)
    result = export_onnx(run)  # raises unless max |ONNX - PyTorch| < 1e-4 at odd sizes
    assert result.worst < 1e-4
    assert result.input_dims == ("batch", 3, "height", "width")
    graph = onnx.load(str(result.path), load_external_data=False).graph
    assert [output.name for output in graph.output] == [OUTPUT_NAME]
