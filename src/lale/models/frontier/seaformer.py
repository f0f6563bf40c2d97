"""SeaFormer: squeeze-enhanced axial attention at 1/32 and 1/64, fused into 1/8 by a light head.

Wan, Zhang, Zhang, Lu & Zhang (fudan-zvg), "SeaFormer: Squeeze-enhanced Axial Transformer for
Mobile Semantic Segmentation", ICLR 2023. Written here from the paper and the authors'
configurations (fudan-zvg/SeaFormer, Apache-2.0, ``seaformer-seg/local_configs/seaformer/
seaformer_{tiny,small}_512x512_160k_2x8_ade20k.py``); their code is not imported. The network:

1. **Five MobileNetV2 stages** (the stem, a 3×3 stride-2 convolution + BN + ReLU, opens the
   first) with outputs at 1/4, 1/8, 1/16, 1/32 and 1/64. The 1/8 map is the detail feature.
2. **SeaFormer layers** after the 1/32 and 1/64 stages. Each block is residual attention and a
   residual MLP (as TopFormer's) with stochastic depth. The attention's queries, keys and values
   (1×1 convolution + BN) are squeezed by averaging over columns and over rows. Each squeezed
   axis gets learned positional embeddings (16 positions, linearly resized to the axis length)
   on queries and keys, and scaled softmax attention along it. The row and column results
   (ReLU6, 1×1 convolution + BN each) are broadcast and added to the full-resolution values.
   A ReLU6 and a 1×1 convolution + BN then give a hardsigmoid gate. The gate multiplies the
   **detail enhancement** branch: the queries, keys and values concatenated, a 3×3 depthwise
   convolution + BN, ReLU6, and a 1×1 convolution + BN.
3. **Light head**: the 1/8 map is fused with the 1/32 output, then with the 1/64 output. Each
   fusion is ``embed(local) · hardsigmoid(embed(global))``, with 1×1 convolutions + BN, the gate
   resized bilinearly. Then a depthwise 1×1 convolution + BN + ReLU, channel dropout, a 1×1
   classifier, and a bilinear resize to the input.

The output projections of the attention start at zero (BN scale 0), as the authors declare them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.blocks import DropPath
from lale.models.frontier.topformer import InvertedResidual, Mlp, Row, conv_bn
from lale.models.padding import AnySize
from lale.models.registry import register_model

__all__ = [
    "SEAFORMER_S",
    "SEAFORMER_T",
    "SeaFormer",
    "SeaFormerConfig",
    "build_seaformer",
]

STRIDE: Final = 64
"""The coarsest stage's stride, which the (padded) input sides must be multiples of."""


@dataclass(frozen=True)
class SeaFormerConfig:
    """A SeaFormer network besides its input bands and classes.

    From Wan et al., "SeaFormer: Squeeze-enhanced Axial Transformer for Mobile Semantic
    Segmentation" (ICLR 2023) and the authors' ADE20K configurations. Published (ADE20K,
    150 classes, 512×512, the authors' README; "FLOPs" as mmseg's ``get_flops`` counts them,
    multiply-adds with BatchNorm and activations): SeaFormer-T 1.7 M parameters / 0.6 G,
    35.0 mIoU; SeaFormer-S 4.0 M / 1.1 G, 38.9 mIoU (batch 16).

    Attributes:
        stages: Five stages of inverted residual rows, (kernel, expansion, channels, stride);
            the stem opens the first. Their outputs sit at 1/4, 1/8, 1/16, 1/32 and 1/64.
        heads: Attention heads of both SeaFormer layers.
        head_widths: Widths of the head's two fusions (the second is the classifier's input).
        key_dims: Channels per head of queries and keys, per SeaFormer layer.
        depths: Blocks of the two SeaFormer layers (after the 1/32 and the 1/64 stage).
        mlp_ratios: Hidden ÷ input channels of each layer's MLP.
        stem_channels: Output channels of the stride-2 stem.
        attn_ratio: Value channels per head ÷ key channels (2: the detail branch's
            concatenation of queries, keys and values is then ``2 × value`` channels wide).
        positions: Length of the learned axial positional embeddings.
        drop_path_rate: Stochastic depth, rising linearly from 0 within each layer.
        dropout: Channel dropout before the classifier.
    """

    stages: tuple[tuple[Row, ...], ...]
    heads: int
    head_widths: tuple[int, int]
    key_dims: tuple[int, int] = (16, 24)
    depths: tuple[int, int] = (2, 2)
    mlp_ratios: tuple[float, float] = (2.0, 4.0)
    stem_channels: int = 16
    attn_ratio: float = 2.0
    positions: int = 16
    drop_path_rate: float = 0.1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        stages = tuple(tuple(tuple(int(v) for v in row) for row in stage) for stage in self.stages)
        if len(stages) != 5 or any(not s or any(len(r) != 4 for r in s) for s in stages):
            raise ValueError(
                "stages need 5 non-empty lists of (kernel, expansion, channels, stride)"
            )
        object.__setattr__(self, "stages", stages)
        for name in ("head_widths", "key_dims", "depths", "mlp_ratios"):
            value = tuple(getattr(self, name))
            if len(value) != 2:
                raise ValueError(f"{name} needs 2 entries, got {value}")
            object.__setattr__(self, name, value)
        if self.stage_strides != (4, 8, 16, 32, STRIDE):
            raise ValueError(f"stages must end at 1/4 … 1/64, got 1/{self.stage_strides}")
        if self.heads < 1 or self.positions < 1 or min(self.head_widths) < 1:
            raise ValueError("heads, positions and head widths must be positive")

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """Output stride of each stage (the stem halves the input)."""
        strides, stride = [], 2
        for stage in self.stages:
            for row in stage:
                stride *= row[3]
            strides.append(stride)
        return tuple(strides)

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of each stage."""
        return tuple(stage[-1][2] for stage in self.stages)


class AxialPosition(nn.Module):
    """Learned positions along one squeezed axis, linearly resized to its length."""

    def __init__(self, dim: int, positions: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(1, dim, positions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        return x + F.interpolate(self.embedding, size=size, mode="linear", align_corners=False)


def _zero_bn(block: nn.Sequential) -> nn.Sequential:
    """``block`` with its last BatchNorm's scale set to 0 (the branch starts silent)."""
    bn = block[-1]
    assert isinstance(bn, nn.BatchNorm2d)
    nn.init.zeros_(bn.weight)
    return block


class SeaAttention(nn.Module):
    """Squeeze-enhanced axial attention, gating the detail-enhancement branch."""

    def __init__(self, dim: int, key_dim: int, heads: int, cfg: SeaFormerConfig) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.value_dim = int(cfg.attn_ratio * key_dim)
        qk, v = key_dim * heads, self.value_dim * heads
        self.q, self.k, self.v = conv_bn(dim, qk), conv_bn(dim, qk), conv_bn(dim, v)
        self.row_q, self.row_k = AxialPosition(qk, cfg.positions), AxialPosition(qk, cfg.positions)
        self.col_q, self.col_k = AxialPosition(qk, cfg.positions), AxialPosition(qk, cfg.positions)
        self.row_proj = nn.Sequential(nn.ReLU6(), _zero_bn(conv_bn(v, v)))
        self.col_proj = nn.Sequential(nn.ReLU6(), _zero_bn(conv_bn(v, v)))
        self.proj = nn.Sequential(nn.ReLU6(), _zero_bn(conv_bn(v, dim)))
        mixed = 2 * qk + v
        self.detail = nn.Sequential(
            conv_bn(mixed, mixed, 3, groups=mixed), nn.ReLU6(), conv_bn(mixed, dim)
        )

    def _axis(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos_q: nn.Module, pos_k: nn.Module
    ) -> torch.Tensor:
        """Attention along one squeezed axis: ``B × C × N`` in, ``B × value × N`` out."""
        b, n = q.shape[0], q.shape[-1]
        q = pos_q(q).reshape(b, self.heads, self.key_dim, n).transpose(2, 3)
        k = pos_k(k).reshape(b, self.heads, self.key_dim, n)
        v = v.reshape(b, self.heads, self.value_dim, n).transpose(2, 3)
        attn = (torch.matmul(q, k) * self.key_dim**-0.5).softmax(dim=-1)
        return torch.matmul(attn, v).transpose(2, 3).reshape(b, self.heads * self.value_dim, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        detail = self.detail(torch.cat([q, k, v], dim=1))
        rows = self._axis(q.mean(-1), k.mean(-1), v.mean(-1), self.row_q, self.row_k)
        cols = self._axis(q.mean(-2), k.mean(-2), v.mean(-2), self.col_q, self.col_k)
        axial = self.row_proj(rows.unsqueeze(-1)) + self.col_proj(cols.unsqueeze(-2))
        return F.hardsigmoid(self.proj(v + axial)) * detail


class SeaBlock(nn.Module):
    """Residual squeeze-enhanced axial attention and residual MLP, with stochastic depth."""

    def __init__(
        self, dim: int, key_dim: int, mlp_ratio: float, cfg: SeaFormerConfig, drop_path: float
    ) -> None:
        super().__init__()
        self.attn = SeaAttention(dim, key_dim, cfg.heads, cfg)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.mlp(x))


class Fusion(nn.Module):
    """``embed(local) · hardsigmoid(embed(global))``, the gate resized to the local map."""

    def __init__(self, local_ch: int, global_ch: int, out_ch: int) -> None:
        super().__init__()
        self.local = conv_bn(local_ch, out_ch)
        self.gate = conv_bn(global_ch, out_ch)

    def forward(self, local: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        gate = F.hardsigmoid(self.gate(context))
        size = local.shape[-2:]
        return self.local(local) * F.interpolate(
            gate, size=size, mode="bilinear", align_corners=False
        )


class LightHead(nn.Module):
    """Two fusions into the 1/8 map, a depthwise 1×1 convolution + BN + ReLU, classify."""

    def __init__(
        self, in_channels: Sequence[int], widths: tuple[int, int], num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.fuse1 = Fusion(in_channels[0], in_channels[1], widths[0])
        self.fuse2 = Fusion(widths[0], in_channels[2], widths[1])
        width = widths[1]
        self.fuse = nn.Sequential(
            nn.Conv2d(width, width, 1, groups=width, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, detail: torch.Tensor, mid: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        x = self.fuse2(self.fuse1(detail, mid), top)
        return self.classifier(self.dropout(self.fuse(x)))


class SeaFormer(nn.Module):
    """Five MobileNetV2 stages, SeaFormer layers at 1/32 and 1/64, the light head at 1/8.

    Expects sides that are multiples of 64 (wrap it in :class:`AnySize`, as
    :func:`build_seaformer` does).

    Args:
        num_classes: Output classes.
        in_channels: Input bands.
        config: The architecture, see :class:`SeaFormerConfig`.
    """

    def __init__(self, num_classes: int, in_channels: int, config: SeaFormerConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(conv_bn(in_channels, config.stem_channels, 3, 2), nn.ReLU())
        stages, ch = [], config.stem_channels
        for stage in config.stages:
            rows = []
            for row in stage:
                rows.append(InvertedResidual(ch, row))
                ch = row[2]
            stages.append(nn.Sequential(*rows))
        self.stages = nn.ModuleList(stages)
        channels = config.stage_channels
        layers = []
        for i, dim in enumerate(channels[3:]):
            rates = torch.linspace(0, config.drop_path_rate, config.depths[i]).tolist()
            key_dim, ratio = config.key_dims[i], config.mlp_ratios[i]
            layers.append(nn.Sequential(*(SeaBlock(dim, key_dim, ratio, config, r) for r in rates)))
        self.layers = nn.ModuleList(layers)
        self.head = LightHead(
            (channels[1], channels[3], channels[4]), config.head_widths, num_classes, config.dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stages[1](self.stages[0](self.stem(x)))
        detail = x
        mid = self.layers[0](self.stages[3](self.stages[2](x)))
        top = self.layers[1](self.stages[4](mid))
        logits = self.head(detail, mid, top)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_seaformer(num_classes: int = 7, in_channels: int = 3, **config: Any) -> AnySize:
    """Build SeaFormer from :class:`SeaFormerConfig` keyword arguments (lists allowed), padded
    to a multiple of 64 and cropped back for any input size."""
    try:
        cfg = SeaFormerConfig(**config)
    except TypeError as err:  # unknown keyword: name the valid ones
        valid = ", ".join(SeaFormerConfig.__dataclass_fields__)
        raise TypeError(f"{err}; SeaFormer options are: {valid}") from None
    return AnySize(SeaFormer(num_classes, in_channels, cfg), multiple=STRIDE)


# The authors' seaformer_tiny / seaformer_small configurations (ADE20K, 512×512).
SEAFORMER_T: Final = SeaFormerConfig(
    stages=(
        ((3, 1, 16, 1), (3, 4, 16, 2), (3, 3, 16, 1)),
        ((5, 3, 32, 2), (5, 3, 32, 1)),
        ((3, 3, 64, 2), (3, 3, 64, 1)),
        ((5, 3, 128, 2),),
        ((3, 6, 160, 2),),
    ),
    heads=4,
    head_widths=(64, 96),
    depths=(2, 2),
)
SEAFORMER_S: Final = SeaFormerConfig(
    stages=(
        ((3, 1, 16, 1), (3, 4, 24, 2), (3, 3, 24, 1)),
        ((5, 3, 48, 2), (5, 3, 48, 1)),
        ((3, 3, 96, 2), (3, 3, 96, 1)),
        ((5, 4, 160, 2),),
        ((3, 6, 192, 2),),
    ),
    heads=6,
    head_widths=(96, 128),
    depths=(3, 3),
)


def register_seaformer(name: str, config: SeaFormerConfig, note: str) -> None:
    """Register a SeaFormer variant with every configuration field recorded."""
    register_model(
        name,
        build_seaformer,
        family="frontier",
        description=f"SeaFormer-{note}: squeeze-enhanced axial attention (Wan et al. 2023)",
        **asdict(config),
    )


register_seaformer("seaformer_t", SEAFORMER_T, "T (1.7 M at 150 classes)")
register_seaformer("seaformer_s", SEAFORMER_S, "S (4.0 M at 150 classes)")
