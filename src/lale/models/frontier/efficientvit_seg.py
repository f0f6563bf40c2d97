"""EfficientViT-Seg: the EfficientViT backbone (ReLU linear attention) under the authors' SegHead.

Cai, Li, Hu, Gan & Han, "EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense
Prediction", ICCV 2023. The backbone is timm's ``efficientvit_mit`` (the same network as the
authors' ``EfficientViTBackbone``: a conv stem, MBConv stages at 1/4 and 1/8, and LiteMLA +
MBConv blocks at 1/16 and 1/32), built from the configuration's widths and depths, randomly
initialised, ``features_only`` so no classifier exists. The head is written here after the
authors' ``SegHead`` (mit-han-lab/efficientvit, Apache-2.0, ``efficientvit/models/efficientvit/
seg.py``): each of the 1/8, 1/16 and 1/32 features is projected by a 1×1 convolution + BN,
resized bicubically to 1/8 and summed; residual MBConv blocks follow, then a 1×1 expansion and
the classifier. The 1/8 logits are resized bicubically to the input, as the authors' evaluation
does. Their package is not imported (it pulls in triton).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.padding import AnySize
from lale.models.registry import register_model

__all__ = [
    "EFFICIENTVIT_SEG_B0",
    "EFFICIENTVIT_SEG_B1",
    "EfficientVitSeg",
    "EfficientVitSegConfig",
    "SegHead",
    "build_efficientvit_seg",
]

HEAD_STRIDE = 8
"""The head works at 1/8 of the (padded) input, as in the authors' SegHead."""


@dataclass(frozen=True)
class EfficientVitSegConfig:
    """An EfficientViT-Seg network besides its input bands and classes.

    From Cai et al., "EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense
    Prediction" (ICCV 2023). Backbone widths, depths and attention width are the authors'
    ``efficientvit_backbone_b0``/``b1`` (equal to timm's ``efficientvit_b0``/``b1``); the head
    settings are their ``efficientvit_seg_b0``/``b1`` for Cityscapes. Published (Cityscapes,
    19 classes, 1024×2048, the paper and the authors' README): B0 0.7 M parameters / 4.4 G
    MACs, 75.7 mIoU; B1 4.8 M / 25.3 G (README: 25 G), 80.5 mIoU; B1 on ADE20K (150 classes,
    512×512, ``final_expand=0``) 4.8 M / 3.1 G. The authors count MACs with torchprofile.

    Attributes:
        widths: Channels of the stem and the four stages (1/2, 1/4, 1/8, 1/16, 1/32).
        depths: Blocks of the stem and of each stage (attention blocks at 1/16 and 1/32).
        attention_dim: Channels per LiteMLA head (the authors' ``dim``, timm's ``head_dim``).
        expand_ratio: MBConv expansion in the backbone.
        head_width: Channels of the SegHead.
        head_depth: Residual MBConv blocks in the head.
        head_expand: MBConv expansion in the head.
        final_expand: Expansion of the 1×1 convolution before the classifier; ``0`` for no
            such convolution (the authors' ``None``, their ADE20K setting; not ``None`` here,
            because the registry drops ``None`` arguments).
        dropout: Dropout before the classifier (the authors' 0).
    """

    widths: tuple[int, int, int, int, int]
    depths: tuple[int, int, int, int, int]
    head_width: int
    head_depth: int
    attention_dim: int = 16
    expand_ratio: float = 4.0
    head_expand: float = 4.0
    final_expand: float = 4.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("widths", "depths"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 5:
                raise ValueError(f"{name} needs 5 entries (stem and four stages), got {value}")
            object.__setattr__(self, name, value)
        if self.head_depth < 0 or self.head_width < 1:
            raise ValueError("head_width must be positive and head_depth not negative")
        if self.final_expand < 0:
            raise ValueError(f"final_expand must be >= 0 (0: none), got {self.final_expand}")


def conv_bn(
    in_ch: int, out_ch: int, kernel: int = 1, groups: int = 1, act: bool = False
) -> nn.Sequential:
    """Convolution without bias (same padding), BatchNorm and optionally Hardswish."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.Hardswish())
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Residual inverted bottleneck: 1×1 expand · 3×3 depthwise · 1×1 project, each with BN,
    Hardswish after the first two (the authors' head block)."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        mid = round(dim * expand_ratio)
        self.body = nn.Sequential(
            conv_bn(dim, mid, act=True),
            conv_bn(mid, mid, 3, groups=mid, act=True),
            conv_bn(mid, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SegHead(nn.Module):
    """The authors' SegHead: project, resize to the finest level and sum, MBConvs, classify.

    Args:
        in_channels: Channels of the features, finest first.
        num_classes: Output classes.
        cfg: Head settings (``head_width``, ``head_depth``, ``head_expand``, ``final_expand``,
            ``dropout``).
    """

    def __init__(
        self, in_channels: Sequence[int], num_classes: int, cfg: EfficientVitSegConfig
    ) -> None:
        super().__init__()
        width = cfg.head_width
        self.inputs = nn.ModuleList(conv_bn(c, width) for c in in_channels)
        self.middle = nn.Sequential(
            *(MBConv(width, cfg.head_expand) for _ in range(cfg.head_depth))
        )
        out_width = width
        layers: list[nn.Module] = []
        if cfg.final_expand > 0:
            out_width = round(width * cfg.final_expand)
            layers.append(conv_bn(width, out_width, act=True))
        layers += [nn.Dropout(cfg.dropout), nn.Conv2d(out_width, num_classes, 1)]
        self.output = nn.Sequential(*layers)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = self.inputs[0](features[0])
        for proj, feature in zip(self.inputs[1:], features[1:], strict=True):
            x = x + F.interpolate(proj(feature), size=size, mode="bicubic", align_corners=False)
        return self.output(self.middle(x))


def _timm() -> Any:
    """timm, imported after making torchvision importable (a CUDA build next to a CPU torch)."""
    from lale import _torchvision_compat

    _torchvision_compat.install()
    try:
        import timm
    except ImportError as err:
        raise ImportError(
            f"EfficientViT-Seg needs timm ({err}); install it with: pip install 'lale[baselines]'"
        ) from err
    return timm


class EfficientVitSeg(nn.Module):
    """EfficientViT backbone → SegHead at 1/8 → bicubic resize to the input.

    Expects sides that are multiples of 32 (wrap it in :class:`AnySize`, as
    :func:`build_efficientvit_seg` does).

    Args:
        num_classes: Output classes.
        in_channels: Input bands.
        config: The architecture, see :class:`EfficientVitSegConfig`.
    """

    def __init__(self, num_classes: int, in_channels: int, config: EfficientVitSegConfig) -> None:
        super().__init__()
        self.config = config
        # Features at 1/8, 1/16, 1/32: timm's stages 1-3 (stage 0 is the 1/4 MBConv stage).
        self.backbone = _timm().create_model(
            "efficientvit_b0",  # only the model class is taken; the widths below define it
            pretrained=False,
            features_only=True,
            out_indices=(1, 2, 3),
            in_chans=in_channels,
            widths=config.widths,
            depths=config.depths,
            head_dim=config.attention_dim,
            expand_ratio=config.expand_ratio,
        )
        reductions = tuple(self.backbone.feature_info.reduction())
        if reductions != (HEAD_STRIDE, 16, 32):
            raise ValueError(f"unexpected backbone strides {reductions}")
        self.head = SegHead(self.backbone.feature_info.channels(), num_classes, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bicubic", align_corners=False)


def build_efficientvit_seg(num_classes: int = 7, in_channels: int = 3, **config: Any) -> AnySize:
    """Build EfficientViT-Seg from :class:`EfficientVitSegConfig` keyword arguments (lists
    allowed), padded to a multiple of 32 and cropped back for any input size."""
    try:
        cfg = EfficientVitSegConfig(**config)
    except TypeError as err:  # unknown keyword: name the valid ones
        valid = ", ".join(EfficientVitSegConfig.__dataclass_fields__)
        raise TypeError(f"{err}; EfficientViT-Seg options are: {valid}") from None
    return AnySize(EfficientVitSeg(num_classes, in_channels, cfg), multiple=32)


# The authors' Cityscapes models (efficientvit_seg_b0 / _b1 in their seg.py).
EFFICIENTVIT_SEG_B0: Final = EfficientVitSegConfig(
    widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2), head_width=32, head_depth=1
)
EFFICIENTVIT_SEG_B1: Final = EfficientVitSegConfig(
    widths=(16, 32, 64, 128, 256), depths=(1, 2, 3, 3, 4), head_width=64, head_depth=3
)


def register_efficientvit_seg(name: str, config: EfficientVitSegConfig, note: str) -> None:
    """Register an EfficientViT-Seg variant with every configuration field recorded."""
    register_model(
        name,
        build_efficientvit_seg,
        family="frontier",
        description=f"EfficientViT-Seg {note}: LiteMLA backbone + SegHead (Cai et al., ICCV 2023)",
        requires="baselines",
        **asdict(config),
    )


register_efficientvit_seg("efficientvit_seg_b0", EFFICIENTVIT_SEG_B0, "B0 (0.7 M at 19 classes)")
register_efficientvit_seg("efficientvit_seg_b1", EFFICIENTVIT_SEG_B1, "B1 (4.8 M at 19 classes)")
