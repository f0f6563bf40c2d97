"""The LALE network: a resolution-split hybrid encoder and an all-MLP decoder.

ConvMixer stages run at 1/4 and 1/8 of the input, transformer stages only at 1/16 and 1/32,
where self-attention's quadratic cost is small. Where attention sits is configuration
(``mixers``), so the ablation "attention at 1/8" is one argument. Each variant is a
:class:`LaleConfig` constant (``LALE_T`` … ``LALE_L``) registered at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.activations import ActKind, activation
from lale.models.blocks import (
    ConvMixerBlock,
    ConvMlpTransformerBlock,
    NormPosition,
    TransformerBlock,
    attention_heads,
)
from lale.models.decoder import AllMLPDecoder
from lale.models.norms import NormKind, norm2d
from lale.models.padding import InputPadding, crop_to, pad_to_multiple
from lale.models.registry import register_model

Mixer = Literal["conv", "attn"]
MlpKind = Literal["linear", "conv"]
REDUCTIONS = (4, 8, 16, 32)


@dataclass(frozen=True)
class LaleConfig:
    """Everything that defines a LALE network besides its input bands and classes.

    Attributes:
        dims: Channels of the four stages (at 1/4, 1/8, 1/16, 1/32).
        depths: Blocks per stage.
        mixers: Block type per stage, ``"conv"`` (ConvMixer) or ``"attn"`` (transformer).
        decoder_dim: Projection width ``D`` of the all-MLP decoder.
        kernel_size: Depthwise kernel of the ConvMixer blocks.
        conv_norm: ``"post"`` (ConvMixer's original order) or ``"pre"``.
        head_dim: Channels per attention head (a stage narrower than this gets one head of its
            full width; see :func:`~lale.models.blocks.attention_heads`).
        mlp_ratio: Hidden width of the transformer MLP, as a multiple of the stage width.
        drop_path_rate: Stochastic depth, rising linearly from 0 to this over all blocks.
        decoder_dropout: Dropout before the classifier.
        mlp: Transformer MLP: ``"linear"`` (two linears on tokens) or ``"conv"`` (ConvMLP: a
            depthwise 3×3 convolution between the two linears, on the map).
        pos_conv: Residual depthwise 3×3 convolution at the entry of each attention stage.
        decoder_fuse: The decoder's 1×1 fuse · norm · activation after the concatenation;
            ``False`` classifies the concatenated projections directly.
        norm: ``"rms"`` (RMSNorm everywhere, the paper's) or ``"classic"`` (BatchNorm on maps,
            LayerNorm on tokens), for the norm-act ablation.
        act: ``"starrelu"`` (the paper's) or ``"gelu"``.
    """

    dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    mixers: tuple[Mixer, Mixer, Mixer, Mixer] = ("conv", "conv", "attn", "attn")
    decoder_dim: int = 128
    kernel_size: int = 7
    conv_norm: NormPosition = "post"
    head_dim: int = 32
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    decoder_dropout: float = 0.1
    mlp: MlpKind = "linear"
    pos_conv: bool = True
    decoder_fuse: bool = True
    norm: NormKind = "rms"
    act: ActKind = "starrelu"

    def __post_init__(self) -> None:
        for field_name in ("dims", "depths", "mixers"):
            value = tuple(getattr(self, field_name))
            if len(value) != 4:
                raise ValueError(f"{field_name} needs 4 entries (one per stage), got {value}")
            object.__setattr__(self, field_name, value)
        bad = [m for m in self.mixers if m not in ("conv", "attn")]
        if bad:
            raise ValueError(f"mixers must be 'conv' or 'attn', got {bad}")
        if self.mlp not in ("linear", "conv"):
            raise ValueError(f"mlp must be 'linear' or 'conv', got {self.mlp!r}")
        if self.norm not in ("rms", "classic"):
            raise ValueError(f"norm must be 'rms' or 'classic', got {self.norm!r}")
        if self.act not in ("starrelu", "gelu"):
            raise ValueError(f"act must be 'starrelu' or 'gelu', got {self.act!r}")
        for dim, mixer in zip(self.dims, self.mixers, strict=True):
            if mixer == "attn":
                attention_heads(dim, self.head_dim)  # raises if the width does not split

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready keyword arguments that rebuild this configuration."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class Stem(nn.Module):
    """Two 3×3 stride-2 convolutions to 1/4: ``C → d/2 → d`` with RMSNorm2d · StarReLU between."""

    def __init__(
        self, in_channels: int, dim: int, norm: NormKind = "rms", act: ActKind = "starrelu"
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, dim // 2, 3, stride=2, padding=1)
        self.norm = norm2d(norm, dim // 2)
        self.act = activation(act)
        self.conv2 = nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.norm(self.conv1(x))))


class Downsample(nn.Sequential):
    """RMSNorm2d then a 3×3 stride-2 convolution between stages."""

    def __init__(self, in_dim: int, out_dim: int, norm: NormKind = "rms") -> None:
        super().__init__(norm2d(norm, in_dim), nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1))


class ConvStage(nn.Module):
    """ConvMixer blocks on the ``B×C×H×W`` map."""

    def __init__(self, dim: int, depth: int, cfg: LaleConfig, drop_path: Sequence[float]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                ConvMixerBlock(dim, cfg.kernel_size, cfg.conv_norm, dp, cfg.norm, cfg.act)
                for dp in drop_path
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class AttentionStage(nn.Module):
    """Transformer blocks at one resolution.

    A residual depthwise 3×3 convolution at stage entry (``pos_conv``) gives the tokens their
    position (conditional positional encoding): it works at any resolution, unlike a fixed
    table. With ``mlp="conv"`` the blocks run on the map and the ConvMLP's depthwise
    convolution carries the position instead.
    """

    def __init__(self, dim: int, depth: int, cfg: LaleConfig, drop_path: Sequence[float]) -> None:
        super().__init__()
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if cfg.pos_conv else None
        self.on_map = cfg.mlp == "conv"
        block_cls = ConvMlpTransformerBlock if self.on_map else TransformerBlock
        self.blocks = nn.Sequential(
            *(
                block_cls(dim, cfg.head_dim, cfg.mlp_ratio, dp, cfg.norm, cfg.act)
                for dp in drop_path
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos is not None:
            x = x + self.pos(x)
        if self.on_map:
            return self.blocks(x)
        b, c, h, w = x.shape
        tokens = self.blocks(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class LaleEncoder(nn.Module):
    """Stem to 1/4, then four stages at 1/4, 1/8, 1/16 and 1/32.

    Attributes:
        out_channels: Channels of the returned features, finest first.
        reductions: Their strides relative to the input.
    """

    def __init__(self, in_channels: int, cfg: LaleConfig) -> None:
        super().__init__()
        self.out_channels = tuple(cfg.dims)
        self.reductions = REDUCTIONS
        self.stem = Stem(in_channels, cfg.dims[0], cfg.norm, cfg.act)
        # On the CPU whatever the default device, so that building under torch.device("meta") works.
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
        self.downsamples = nn.ModuleList()
        self.stages = nn.ModuleList()
        start = 0
        for i, (dim, depth, mixer) in enumerate(zip(cfg.dims, cfg.depths, cfg.mixers, strict=True)):
            self.downsamples.append(
                nn.Identity() if i == 0 else Downsample(cfg.dims[i - 1], dim, cfg.norm)
            )
            stage_cls = AttentionStage if mixer == "attn" else ConvStage
            self.stages.append(stage_cls(dim, depth, cfg, rates[start : start + depth]))
            start += depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for downsample, stage in zip(self.downsamples, self.stages, strict=True):
            x = stage(downsample(x))
            features.append(x)
        return features


class Lale(nn.Module):
    """LALE: encoder → all-MLP decoder → bilinear ×4, for inputs of any size and band count.

    Inputs whose sides are not multiples of 32 are reflect-padded inside the model and the
    logits cropped back to the input size.

    Args:
        num_classes: Output classes.
        in_channels: Input bands.
        config: The architecture, see :class:`LaleConfig`.

    Attributes:
        output_stride: Stride of the coarsest feature map.
        input_padding: How ``forward`` pads its input (to a multiple of ``output_stride``).
    """

    output_stride = 32
    input_padding = InputPadding(multiple=output_stride)

    def __init__(self, num_classes: int, in_channels: int, config: LaleConfig) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.encoder = LaleEncoder(in_channels, config)
        self.decoder = AllMLPDecoder(
            self.encoder.out_channels,
            config.decoder_dim,
            num_classes,
            config.decoder_dropout,
            config.norm,
            config.act,
            fuse=config.decoder_fuse,
        )
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.output_stride)
        logits = self.decoder(self.encoder(padded))
        logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(logits, h, w)


def _init_weights(module: nn.Module) -> None:
    # Truncated-normal linear layers as in the MetaFormer / SegFormer reference code.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_lale(num_classes: int = 7, in_channels: int = 3, **config: Any) -> Lale:
    """Build a LALE network from :class:`LaleConfig` keyword arguments (lists allowed)."""
    for key in ("dims", "depths", "mixers"):
        if key in config:
            config[key] = tuple(config[key])
    try:
        cfg = LaleConfig(**config)
    except TypeError as err:  # unknown keyword: name the valid ones
        valid = ", ".join(LaleConfig.__dataclass_fields__)
        raise TypeError(f"{err}; LALE options are: {valid}") from None
    return Lale(num_classes, in_channels, cfg)


def register_lale(name: str, config: LaleConfig, note: str) -> None:
    """Register a LALE variant: ``create_model(name)`` builds ``config``.

    Every field is recorded, so a run's ``config.json`` holds the whole architecture and does
    not depend on :class:`LaleConfig`'s defaults staying as they are.
    """
    register_model(
        name,
        build_lale,
        family="lale",
        description=f"LALE {note}: ConvMixer @1/4,1/8 + attention @1/16,1/32",
        **asdict(config),
    )


# lale's own scaling family. Widths/depths are not published; these meet the parameter targets
# (lale_t 1.6 M ± 5 %, then about 4, 8 and 16 M) — see docs/models.md's table.
LALE_T: Final = LaleConfig(dims=(32, 64, 128, 192), depths=(2, 2, 4, 1), decoder_dim=64)
LALE_S: Final = LaleConfig(dims=(48, 96, 192, 256), depths=(2, 2, 4, 2), decoder_dim=96)
LALE_B: Final = LaleConfig(dims=(64, 128, 256, 320), depths=(2, 2, 5, 2), decoder_dim=128)
LALE_L: Final = LaleConfig(dims=(80, 160, 320, 512), depths=(2, 2, 6, 2), decoder_dim=192)

register_lale("lale_t", LALE_T, "tiny")
register_lale("lale_s", LALE_S, "small")
register_lale("lale_b", LALE_B, "base")
register_lale("lale_l", LALE_L, "large")

# The paper's own variants (its LALE-S1 / LALE-S2). Widths and depths are not published: these
# are calibrated to the published totals (S1 1.6 M / 0.59 GMACs, S2 2.6 M / 0.78 GMACs at
# 1×3×256²), see docs/design.md. ConvMixer kernel 3 (the paper's K3; kernel_size=7 gives K7),
# MHSA + ConvMLP blocks without a stage-entry positional convolution.
LALE_S1: Final = LaleConfig(
    dims=(24, 48, 96, 192),
    depths=(2, 2, 5, 2),
    decoder_dim=128,
    kernel_size=3,
    mlp_ratio=3.0,
    mlp="conv",
    pos_conv=False,
)
# S2 is S1 with deeper attention stages and a wider ConvMLP; everything else is shared.
LALE_S2: Final = replace(LALE_S1, depths=(2, 2, 8, 3), mlp_ratio=4.0)

register_lale("lale_s1", LALE_S1, "paper S1 (MHSA + ConvMLP)")
register_lale("lale_s2", LALE_S2, "paper S2 (MHSA + ConvMLP)")
