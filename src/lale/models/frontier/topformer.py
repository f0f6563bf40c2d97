"""TopFormer: a token pyramid, a transformer at 1/64, semantics injected back into the pyramid.

Zhang, Xie, Zhang, Wang, Zhou & Huang (hustvl), "TopFormer: Token Pyramid Transformer for Mobile
Semantic Segmentation", CVPR 2022. Written here from the paper and the authors' configurations
(hustvl/TopFormer, Apache-2.0, ``local_configs/topformer/topformer_{tiny,small}_512x512_160k_*``);
their code is not imported. The network:

1. **Token pyramid module**: a 3×3 stride-2 stem and MobileNetV2 inverted residual rows
   (kernel, expansion, channels, stride); the outputs of four rows, at 1/4, 1/8, 1/16 and 1/32,
   are the token pyramid.
2. **Pyramid pool aggregation**: each level average-pooled to 1/64 and concatenated along
   channels.
3. **Semantics extractor**: transformer blocks at 1/64 on that concatenation; attention with
   1×1 convolution + BN projections for queries, keys (``key_dim`` per head) and values
   (``attn_ratio × key_dim``), a ReLU6 and a 1×1 convolution + BN (its scale initialised to 0)
   as output; an MLP of 1×1 convolution + BN, a 3×3 depthwise convolution, ReLU6 and 1×1
   convolution + BN. Both branches residual, with stochastic depth.
4. **Semantic injection** at 1/8, 1/16 and 1/32: the global tokens are split back by level;
   ``local · hardsigmoid(act(global)) + embed(global)``, every term a 1×1 convolution + BN and
   the global ones resized bilinearly to the local map.
5. **Simple head**: the three injected maps resized to 1/8 and summed, a 1×1 convolution + BN +
   ReLU (depthwise in TopFormer-T), dropout, a 1×1 classifier, bilinear resize to the input.

As the authors' attention does, the query–key product is not scaled by ``key_dim ** -0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.blocks import DropPath
from lale.models.padding import AnySize
from lale.models.registry import register_model

__all__ = [
    "TOPFORMER_S",
    "TOPFORMER_T",
    "TopFormer",
    "TopFormerConfig",
    "build_topformer",
]

Row = tuple[int, int, int, int]
"""One inverted residual row: (kernel, expansion, output channels, stride)."""


@dataclass(frozen=True)
class TopFormerConfig:
    """A TopFormer network besides its input bands and classes.

    From Zhang et al., "TopFormer: Token Pyramid Transformer for Mobile Semantic Segmentation"
    (CVPR 2022) and the authors' ADE20K configurations. Published (ADE20K, 150 classes, 512×512,
    the paper's Table 1, "FLOPs" from mmcv's ``get_flops``, which counts multiply-adds):
    TopFormer-T 1.4 M parameters / 0.6 G, 34.6 mIoU; TopFormer-S 3.1 M / 1.2 G, 37.0 mIoU.

    Attributes:
        rows: The token pyramid's inverted residual rows, (kernel, expansion, channels, stride).
        pyramid: Indices of the rows whose outputs form the pyramid (1/4, 1/8, 1/16, 1/32).
        heads: Attention heads of the semantics extractor.
        width: Channels of the semantic injection outputs and of the head.
        depthwise_head: Whether the head's fusing 1×1 convolution is depthwise (TopFormer-T).
        stem_channels: Output channels of the stride-2 stem.
        depth: Transformer blocks.
        key_dim: Channels per head of queries and keys.
        attn_ratio: Value channels per head ÷ ``key_dim``.
        mlp_ratio: Hidden ÷ input channels of the transformer MLP.
        pool_stride: Further downsampling of the coarsest level for the tokens (1/32 → 1/64).
        drop_path_rate: Stochastic depth, rising linearly from 0 over the transformer blocks.
        dropout: Dropout before the classifier.
    """

    rows: tuple[Row, ...]
    pyramid: tuple[int, int, int, int]
    heads: int
    width: int
    depthwise_head: bool
    stem_channels: int = 16
    depth: int = 4
    key_dim: int = 16
    attn_ratio: float = 2.0
    mlp_ratio: float = 2.0
    pool_stride: int = 2
    drop_path_rate: float = 0.1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        rows = tuple(tuple(int(v) for v in row) for row in self.rows)
        if not rows or any(len(row) != 4 for row in rows):
            raise ValueError(f"rows need (kernel, expansion, channels, stride) each, got {rows}")
        object.__setattr__(self, "rows", rows)
        pyramid = tuple(int(i) for i in self.pyramid)
        if len(pyramid) != 4 or sorted(pyramid) != list(pyramid) or pyramid[-1] >= len(rows):
            raise ValueError(f"pyramid needs 4 increasing row indices below {len(rows)}")
        object.__setattr__(self, "pyramid", pyramid)
        strides = self.level_strides
        if strides != (4, 8, 16, 32):
            raise ValueError(f"the pyramid rows must sit at 1/4, 1/8, 1/16, 1/32, got {strides}")
        if self.heads < 1 or self.depth < 0 or self.width < 1 or self.pool_stride < 1:
            raise ValueError("heads, width and pool_stride must be positive, depth not negative")

    @property
    def level_strides(self) -> tuple[int, ...]:
        """Output stride of each pyramid level (the stem halves the input)."""
        strides, stride = [], 2
        for i, row in enumerate(self.rows):
            stride *= row[3]
            if i in self.pyramid:
                strides.append(stride)
        return tuple(strides)

    @property
    def level_channels(self) -> tuple[int, ...]:
        """Channels of each pyramid level."""
        return tuple(self.rows[i][2] for i in self.pyramid)

    @property
    def stride(self) -> int:
        """The token grid's stride, which the (padded) input sides must be multiples of."""
        return self.level_strides[-1] * self.pool_stride


def conv_bn(
    in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution without bias (same padding) and BatchNorm: the authors' ``Conv2d_BN``."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expansion (unless 1) · k×k depthwise · 1×1 projection, ReLU."""

    def __init__(self, in_ch: int, row: Row) -> None:
        super().__init__()
        kernel, expand, out_ch, stride = row
        hidden = round(in_ch * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv_bn(in_ch, hidden), nn.ReLU()]
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU()]
        layers.append(conv_bn(hidden, out_ch))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class TokenPyramid(nn.Module):
    """Stem and inverted residual rows; returns the outputs of the pyramid rows."""

    def __init__(self, in_channels: int, cfg: TopFormerConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(in_channels, cfg.stem_channels, 3, 2), nn.ReLU())
        layers, ch = [], cfg.stem_channels
        for row in cfg.rows:
            layers.append(InvertedResidual(ch, row))
            ch = row[2]
        self.rows = nn.ModuleList(layers)
        self.pyramid = cfg.pyramid

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        levels = []
        for i, row in enumerate(self.rows):
            x = row(x)
            if i in self.pyramid:
                levels.append(x)
        return levels


class Attention(nn.Module):
    """Multi-head attention on a map, with 1×1 convolution + BN projections."""

    def __init__(self, dim: int, heads: int, key_dim: int, attn_ratio: float) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.value_dim = int(attn_ratio * key_dim)
        self.q = conv_bn(dim, key_dim * heads)
        self.k = conv_bn(dim, key_dim * heads)
        self.v = conv_bn(dim, self.value_dim * heads)
        out = conv_bn(self.value_dim * heads, dim)
        bn = out[1]
        assert isinstance(bn, nn.BatchNorm2d)
        nn.init.zeros_(bn.weight)  # BN scale 0: each block starts as the identity
        self.proj = nn.Sequential(nn.ReLU6(), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self.q(x).reshape(b, self.heads, self.key_dim, h * w).transpose(2, 3)
        k = self.k(x).reshape(b, self.heads, self.key_dim, h * w)
        v = self.v(x).reshape(b, self.heads, self.value_dim, h * w).transpose(2, 3)
        out = torch.matmul(torch.matmul(q, k).softmax(dim=-1), v)  # unscaled, as the authors'
        return self.proj(out.transpose(2, 3).reshape(b, self.heads * self.value_dim, h, w))


class Mlp(nn.Module):
    """1×1 convolution + BN · 3×3 depthwise convolution · ReLU6 · 1×1 convolution + BN."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(dim, hidden),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.ReLU6(),
            conv_bn(hidden, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Block(nn.Module):
    """Residual attention and residual MLP, each with stochastic depth."""

    def __init__(self, dim: int, cfg: TopFormerConfig, drop_path: float) -> None:
        super().__init__()
        self.attn = Attention(dim, cfg.heads, cfg.key_dim, cfg.attn_ratio)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.mlp(x))


class Injection(nn.Module):
    """Semantic injection: ``local · hardsigmoid(act(global)) + embed(global)``."""

    def __init__(self, local_ch: int, global_ch: int, out_ch: int) -> None:
        super().__init__()
        self.local = conv_bn(local_ch, out_ch)
        self.embed = conv_bn(global_ch, out_ch)
        self.act = conv_bn(global_ch, out_ch)

    def forward(self, local: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        size = local.shape[-2:]
        gate = F.interpolate(
            F.hardsigmoid(self.act(tokens)), size=size, mode="bilinear", align_corners=False
        )
        embed = F.interpolate(self.embed(tokens), size=size, mode="bilinear", align_corners=False)
        return self.local(local) * gate + embed


class SimpleHead(nn.Module):
    """Resize to the finest map and sum, fuse (1×1 conv + BN + ReLU), dropout, classify."""

    def __init__(self, width: int, num_classes: int, depthwise: bool, dropout: float) -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            nn.Conv2d(width, width, 1, groups=width if depthwise else 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout2d(dropout)  # mmseg's decode heads drop whole channels
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = features[0]
        for feature in features[1:]:
            x = x + F.interpolate(feature, size=size, mode="bilinear", align_corners=False)
        return self.classifier(self.dropout(self.fuse(x)))


def _mean_pool(x: torch.Tensor, kernel: int, grid: tuple[int, int]) -> torch.Tensor:
    """Average ``x`` over ``kernel × kernel`` blocks onto ``grid`` (``x`` is ``grid × kernel``).

    The same numbers as ``avg_pool2d(x, kernel)``. Written as a nearest resize to
    ``grid × kernel`` (the identity: it is that size already) and a block mean, so that under
    torch.export every level's grid is the one symbolic size of the input ÷ the token stride,
    rather than sizes it would have to prove equal through the pyramid's strided convolutions.
    """
    b, c = x.shape[:2]
    gh, gw = grid
    x = F.interpolate(x, size=(gh * kernel, gw * kernel), mode="nearest")
    return x.reshape(b, c, gh, kernel, gw, kernel).mean(dim=(3, 5))


class TopFormer(nn.Module):
    """Token pyramid → pooled tokens → transformer → injection at 1/8–1/32 → head → input size.

    Expects sides that are multiples of :attr:`TopFormerConfig.stride` (64; wrap it in
    :class:`AnySize`, as :func:`build_topformer` does), so that every level pools to the token
    grid by a whole kernel.

    Args:
        num_classes: Output classes.
        in_channels: Input bands.
        config: The architecture, see :class:`TopFormerConfig`.
    """

    def __init__(self, num_classes: int, in_channels: int, config: TopFormerConfig) -> None:
        super().__init__()
        self.config = config
        self.pyramid = TokenPyramid(in_channels, config)
        channels = config.level_channels
        self.pools = tuple(config.stride // s for s in config.level_strides)
        dim = sum(channels)
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.transformer = nn.Sequential(*(Block(dim, config, dp) for dp in rates))
        self.injections = nn.ModuleList(Injection(c, c, config.width) for c in channels[1:])
        self.head = SimpleHead(config.width, num_classes, config.depthwise_head, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.pyramid(x)
        grid = (x.shape[-2] // self.config.stride, x.shape[-1] // self.config.stride)
        pooled = [_mean_pool(f, k, grid) for f, k in zip(levels, self.pools, strict=True)]
        tokens = torch.cat(pooled, dim=1)
        parts = self.transformer(tokens).split(self.config.level_channels, dim=1)
        injected = [
            inject(local, part)
            for inject, local, part in zip(self.injections, levels[1:], parts[1:], strict=True)
        ]
        logits = self.head(injected)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_topformer(num_classes: int = 7, in_channels: int = 3, **config: Any) -> AnySize:
    """Build TopFormer from :class:`TopFormerConfig` keyword arguments (lists allowed), padded
    to a multiple of 64 and cropped back for any input size."""
    try:
        cfg = TopFormerConfig(**config)
    except TypeError as err:  # unknown keyword: name the valid ones
        valid = ", ".join(TopFormerConfig.__dataclass_fields__)
        raise TypeError(f"{err}; TopFormer options are: {valid}") from None
    return AnySize(TopFormer(num_classes, in_channels, cfg), multiple=cfg.stride)


# The authors' topformer_tiny / topformer_small configurations (ADE20K, 512×512).
TOPFORMER_T: Final = TopFormerConfig(
    rows=(
        (3, 1, 16, 1),
        (3, 4, 16, 2),
        (3, 3, 16, 1),
        (5, 3, 32, 2),
        (5, 3, 32, 1),
        (3, 3, 64, 2),
        (3, 3, 64, 1),
        (5, 6, 96, 2),
        (5, 6, 96, 1),
    ),
    pyramid=(2, 4, 6, 8),
    heads=4,
    width=128,
    depthwise_head=True,
)
TOPFORMER_S: Final = TopFormerConfig(
    rows=(
        (3, 1, 16, 1),
        (3, 4, 24, 2),
        (3, 3, 24, 1),
        (5, 3, 48, 2),
        (5, 3, 48, 1),
        (3, 3, 96, 2),
        (3, 3, 96, 1),
        (5, 6, 128, 2),
        (5, 6, 128, 1),
        (3, 6, 128, 1),
    ),
    pyramid=(2, 4, 6, 9),
    heads=6,
    width=192,
    depthwise_head=False,
)


def register_topformer(name: str, config: TopFormerConfig, note: str) -> None:
    """Register a TopFormer variant with every configuration field recorded."""
    register_model(
        name,
        build_topformer,
        family="frontier",
        description=f"TopFormer-{note}: token pyramid, transformer at 1/64 (Zhang et al. 2022)",
        **asdict(config),
    )


register_topformer("topformer_t", TOPFORMER_T, "T (1.4 M at 150 classes)")
register_topformer("topformer_s", TOPFORMER_S, "S (3.1 M at 150 classes)")
