"""UNetFormer: a ResNet18 encoder under a decoder of global-local transformer blocks.

Wang, Li, Zhang, Fang, Duan, Meng & Atkinson, "UNetFormer: A UNet-like transformer for efficient
semantic segmentation of remote sensing urban scene imagery", ISPRS Journal of Photogrammetry
and Remote Sensing 190, 2022 (arXiv 2109.08937). Written from the paper's description; the
authors' code (GPL-3.0) was not consulted. The encoder is timm's ``resnet18`` (random init,
``features_only``: no classifier). Each ResNet stage's output is projected to 64 channels and
fused with the upsampled decoder feature by a learned weighted sum. Three global-local
transformer blocks (GLTBs) run at 1/32, 1/16 and 1/8; the feature refinement head (FRH) at 1/4
fuses the first stage and refines the result with channel and spatial attention. An auxiliary
head on the three GLTB outputs is a training-only option (``aux_head``).
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
    "UNETFORMER",
    "GlobalLocalAttention",
    "UNetFormer",
    "UNetFormerConfig",
    "build_unetformer",
]


@dataclass(frozen=True)
class UNetFormerConfig:
    """A UNetFormer network besides its input bands and classes.

    From Wang et al., "UNetFormer: A UNet-like transformer for efficient semantic segmentation
    of remote sensing urban scene imagery" (ISPRS J. Photogramm. Remote Sens., 2022). From the
    paper: ResNet18 encoder, 64 decoder channels, window size 8, BN in the GLTBs, the local
    branch (3×3 and 1×1 conv, each with BN), the cross-shaped window context, the FRH's two
    paths and the auxiliary loss weight 0.4 (:data:`lale.training.module.AUX_LOSS_WEIGHT`).
    This implementation's choices where the text used gives no number: 8 heads with a
    relative position bias, MLP ratio 4 with ReLU6, context pooling over ``window_size + 1``
    pixels, 3×3 depthwise kernels, FRH channel reduction 16 and a 3×3 conv to one map for its
    spatial path, and a 3×3 conv · BN · ReLU6 after each weighted sum and in the head (with
    them the counts meet the published ones). Published (the paper's UAVid comparison,
    8 classes, 1024×1024 input): 11.7 M parameters, 46.9 G "FLOPs" (a MAC count), 67.8 mIoU.

    Attributes:
        encoder: timm backbone (``features_only``; four stages at 1/4 … 1/32).
        decoder_channels: Width of every decoder level.
        window_size: Side of the self-attention windows.
        num_heads: Attention heads per GLTB.
        mlp_ratio: Hidden width of the GLTB MLP, as a multiple of ``decoder_channels``.
        relative_position_bias: Learned relative position bias in the window attention.
        proj_kernel: Depthwise kernel of the projection after the global-local sum.
        channel_reduction: Channel reduction of the FRH's channel-attention path.
        dropout: Dropout before the classifiers.
        aux_head: Build the auxiliary head (training only; its logits go to ``aux_logits``).
    """

    encoder: str = "resnet18"
    decoder_channels: int = 64
    window_size: int = 8
    num_heads: int = 8
    mlp_ratio: float = 4.0
    relative_position_bias: bool = True
    proj_kernel: int = 3
    channel_reduction: int = 16
    dropout: float = 0.1
    aux_head: bool = False

    def __post_init__(self) -> None:
        if self.decoder_channels % self.num_heads:
            raise ValueError(
                f"decoder_channels={self.decoder_channels} does not split into "
                f"{self.num_heads} heads"
            )
        if self.window_size < 2:
            raise ValueError(f"window_size must be at least 2, got {self.window_size}")
        if self.proj_kernel % 2 == 0:
            raise ValueError(f"proj_kernel must be odd, got {self.proj_kernel}")


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution without bias (same padding) followed by BatchNorm."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch))


def conv_bn_act(in_ch: int, out_ch: int, kernel: int = 1) -> nn.Sequential:
    """Convolution · BatchNorm · ReLU6."""
    return nn.Sequential(*conv_bn(in_ch, out_ch, kernel), nn.ReLU6())


def separable_proj(dim: int, kernel: int) -> nn.Sequential:
    """Depthwise ``kernel``² convolution · BatchNorm · 1×1 convolution."""
    return nn.Sequential(*conv_bn(dim, dim, kernel, groups=dim), nn.Conv2d(dim, dim, 1, bias=False))


class WeightedSum(nn.Module):
    """``α · proj(skip) + (1 - α) · up(x)``, then 3×3 conv · BN · ReLU6.

    α is learned: two ReLU-ed weights, normalised to sum 1.

    Args:
        skip_channels: Channels of the encoder feature.
        dim: Decoder channels (the 1×1 projection's output).
    """

    def __init__(self, skip_channels: int, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.proj = conv_bn(skip_channels, dim)
        self.weights = nn.Parameter(torch.ones(2))
        self.eps = eps
        self.post = conv_bn_act(dim, dim, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        w = F.relu(self.weights)
        w = w / (w.sum() + self.eps)
        return self.post(w[0] * self.proj(skip) + w[1] * up)


class GlobalLocalAttention(nn.Module):
    """Local convolutions beside window self-attention with cross-shaped window context.

    local = BN(conv3×3(x)) + BN(conv1×1(x)); global = window multi-head self-attention of a 1×1
    ``qkv`` projection (maps padded with zeros to a multiple of the window), then the sum of a
    vertical and a horizontal average pooling over ``window_size + 1`` pixels, which connects
    neighbouring windows; the two are added and projected (depthwise conv · BN · 1×1 conv).

    Args:
        dim: Channels.
        cfg: ``window_size``, ``num_heads``, ``relative_position_bias``, ``proj_kernel``.
    """

    bias_index: torch.Tensor

    def __init__(self, dim: int, cfg: UNetFormerConfig) -> None:
        super().__init__()
        self.ws, self.heads = cfg.window_size, cfg.num_heads
        self.local3 = conv_bn(dim, dim, 3)
        self.local1 = conv_bn(dim, dim, 1)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.proj = separable_proj(dim, cfg.proj_kernel)
        self.bias_table: nn.Parameter | None = None
        if cfg.relative_position_bias:
            side = 2 * self.ws - 1
            self.bias_table = nn.Parameter(torch.zeros(side * side, self.heads))
            nn.init.trunc_normal_(self.bias_table, std=0.02)
            coords = torch.stack(
                torch.meshgrid(torch.arange(self.ws), torch.arange(self.ws), indexing="ij")
            ).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]) + (self.ws - 1)
            self.register_buffer("bias_index", rel[0] * side + rel[1], persistent=False)

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """Self-attention within ``ws × ws`` windows of a ``B×3C×Hp×Wp`` map → ``B×C×Hp×Wp``."""
        b, c3, hp, wp = qkv.shape
        ws, heads, d = self.ws, self.heads, c3 // (3 * self.heads)
        nh, nw = hp // ws, wp // ws
        windows = qkv.reshape(b, 3, heads, d, nh, ws, nw, ws).permute(1, 0, 4, 6, 2, 5, 7, 3)
        q, k, v = windows.reshape(3, b * nh * nw, heads, ws * ws, d).unbind(0)
        bias = None
        if self.bias_table is not None:
            bias = self.bias_table[self.bias_index].permute(2, 0, 1)  # heads × N × N
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.reshape(b, nh, nw, heads, ws, ws, d).permute(0, 3, 6, 1, 4, 2, 5)
        return out.reshape(b, heads * d, hp, wp)

    def _cross_context(self, x: torch.Tensor) -> torch.Tensor:
        """Vertical plus horizontal average pooling (reflect-padded, size kept)."""
        r = self.ws // 2
        vertical = F.avg_pool2d(F.pad(x, (0, 0, r, r), mode="reflect"), (2 * r + 1, 1), 1)
        horizontal = F.avg_pool2d(F.pad(x, (r, r, 0, 0), mode="reflect"), (1, 2 * r + 1), 1)
        return vertical + horizontal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        local = self.local3(x) + self.local1(x)
        # Always pad (by 0 when divisible): a branch on the size would fix it in an export.
        qkv = F.pad(self.qkv(x), (0, (-w) % self.ws, 0, (-h) % self.ws))
        context = self._cross_context(self._attend(qkv))[..., :h, :w]
        return self.proj(context + local)


class GlobalLocalBlock(nn.Module):
    """GLTB: ``x + GLA(BN(x))`` then ``x + MLP(BN(x))``, the MLP two 1×1 convs with ReLU6."""

    def __init__(self, dim: int, cfg: UNetFormerConfig) -> None:
        super().__init__()
        hidden = round(dim * cfg.mlp_ratio)
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = GlobalLocalAttention(dim, cfg)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU6(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FeatureRefinementHead(nn.Module):
    """FRH: weighted sum with the 1/4 feature, then channel and spatial attention, residual.

    The fused map ``f`` is reweighted by a channel path (global average pooling, 1×1 reduce ·
    ReLU6 · 1×1 expand, sigmoid) and a spatial path (3×3 conv to one map, sigmoid); the two are
    summed, projected (depthwise conv · BN · 1×1) and added to a 1×1 conv · BN shortcut of
    ``f``, then ReLU6.
    """

    def __init__(self, skip_channels: int, dim: int, cfg: UNetFormerConfig) -> None:
        super().__init__()
        reduced = max(dim // cfg.channel_reduction, 1)
        self.fuse = WeightedSum(skip_channels, dim)
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, reduced, 1),
            nn.ReLU6(),
            nn.Conv2d(reduced, dim, 1),
            nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(nn.Conv2d(dim, 1, 3, padding=1), nn.Sigmoid())
        self.shortcut = conv_bn(dim, dim)
        self.proj = separable_proj(dim, 3)
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        f = self.fuse(x, skip)
        refined = f * self.channel(f) + f * self.spatial(f)
        return self.act(self.proj(refined) + self.shortcut(f))


def segmentation_head(dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    """3×3 conv · BN · ReLU6, dropout, 1×1 classifier (the main and the auxiliary head)."""
    return nn.Sequential(
        conv_bn_act(dim, dim, 3), nn.Dropout(dropout), nn.Conv2d(dim, num_classes, 1)
    )


class UNetFormerDecoder(nn.Module):
    """GLTBs at 1/32, 1/16, 1/8 with weighted-sum skips, the FRH at 1/4, the head.

    Args:
        encoder_channels: Channels of the four encoder features, finest first.
        num_classes: Output classes.
        cfg: The architecture.
    """

    def __init__(
        self, encoder_channels: Sequence[int], num_classes: int, cfg: UNetFormerConfig
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = encoder_channels
        dim = cfg.decoder_channels
        self.pre = conv_bn(c4, dim)
        self.block4 = GlobalLocalBlock(dim, cfg)
        self.fuse3, self.block3 = WeightedSum(c3, dim), GlobalLocalBlock(dim, cfg)
        self.fuse2, self.block2 = WeightedSum(c2, dim), GlobalLocalBlock(dim, cfg)
        self.refine = FeatureRefinementHead(c1, dim, cfg)
        self.classify = segmentation_head(dim, num_classes, cfg.dropout)
        self.aux = segmentation_head(dim, num_classes, cfg.dropout) if cfg.aux_head else None

    def forward(
        self, features: Sequence[torch.Tensor], with_aux: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits at 1/4 and, if ``with_aux`` (and built), auxiliary logits at 1/8."""
        res1, res2, res3, res4 = features
        x4 = self.block4(self.pre(res4))
        x3 = self.block3(self.fuse3(x4, res3))
        x2 = self.block2(self.fuse2(x3, res2))
        logits = self.classify(self.refine(x2, res1))
        aux = None
        if with_aux and self.aux is not None:
            size = x2.shape[-2:]
            summed = x2 + F.interpolate(x3, size=size, mode="bilinear", align_corners=False)
            summed = summed + F.interpolate(x4, size=size, mode="bilinear", align_corners=False)
            aux = self.aux(summed)
        return logits, aux


def _timm() -> Any:
    """timm, imported after making torchvision importable (a CUDA build next to a CPU torch)."""
    from lale import _torchvision_compat

    _torchvision_compat.install()
    try:
        import timm
    except ImportError as err:
        raise ImportError(
            f"UNetFormer needs timm ({err}); install it with: pip install 'lale[baselines]'"
        ) from err
    return timm


class UNetFormer(nn.Module):
    """ResNet encoder → UNetFormer decoder → bilinear ×4 to the input.

    Expects sides that are multiples of 32 (wrap it in :class:`AnySize`, as
    :func:`build_unetformer` does); window attention pads each level to the window inside.

    Args:
        num_classes: Output classes.
        in_channels: Input bands.
        config: The architecture, see :class:`UNetFormerConfig`.

    Attributes:
        aux_logits: After a training-mode forward with ``aux_head``, the auxiliary logits
            resized to this module's input; ``None`` otherwise.
    """

    def __init__(self, num_classes: int, in_channels: int, config: UNetFormerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _timm().create_model(
            config.encoder,
            pretrained=False,
            features_only=True,
            out_indices=(1, 2, 3, 4),
            in_chans=in_channels,
        )
        reductions = tuple(self.encoder.feature_info.reduction())
        if reductions != (4, 8, 16, 32):
            raise ValueError(f"encoder {config.encoder!r} has strides {reductions}, not 4…32")
        self.decoder = UNetFormerDecoder(self.encoder.feature_info.channels(), num_classes, config)
        self.aux_logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        with_aux = self.training and self.config.aux_head
        logits, aux = self.decoder(self.encoder(x), with_aux)
        self.aux_logits = None
        if aux is not None:
            self.aux_logits = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_unetformer(num_classes: int = 7, in_channels: int = 3, **config: Any) -> AnySize:
    """Build UNetFormer from :class:`UNetFormerConfig` keyword arguments, padded to a multiple
    of 32 and cropped back for any input size."""
    try:
        cfg = UNetFormerConfig(**config)
    except TypeError as err:  # unknown keyword: name the valid ones
        valid = ", ".join(UNetFormerConfig.__dataclass_fields__)
        raise TypeError(f"{err}; UNetFormer options are: {valid}") from None
    return AnySize(UNetFormer(num_classes, in_channels, cfg), multiple=32)


UNETFORMER: Final = UNetFormerConfig()
"""The paper's UNetFormer (ResNet18, 64 decoder channels, window 8), auxiliary head off."""

register_model(
    "unetformer",
    build_unetformer,
    family="frontier",
    description="UNetFormer: ResNet18 + global-local transformer decoder (Wang et al., 2022)",
    requires="baselines",
    **asdict(UNETFORMER),
)
