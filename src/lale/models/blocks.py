"""The two mixing blocks of LALE's encoder: ConvMixer (high resolution) and transformer."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.activations import ActKind, activation
from lale.models.norms import NormKind, norm2d, token_norm

NormPosition = Literal["post", "pre"]


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class ConvMixerBlock(nn.Module):
    """Trockman & Kolter's ConvMixer block with BN→RMSNorm and GELU→StarReLU.

    ``post`` (the original order)::

        x = x + norm(act(dwconv(x)))
        x = norm(act(pwconv(x)))

    ``pre`` (MetaFormer order, both branches residual)::

        x = x + act(dwconv(norm(x)))
        x = x + act(pwconv(norm(x)))

    Args:
        dim: Channels.
        kernel_size: Depthwise kernel size (odd).
        norm_position: ``"post"`` or ``"pre"``, see above.
        drop_path: Stochastic-depth probability of the residual branches.
        norm: ``"rms"`` (RMSNorm2d) or ``"classic"`` (BatchNorm, ConvMixer's original).
        act: ``"starrelu"`` or ``"gelu"`` (ConvMixer's original).
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        norm_position: NormPosition = "post",
        drop_path: float = 0.0,
        norm: NormKind = "rms",
        act: ActKind = "starrelu",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if norm_position not in ("post", "pre"):
            raise ValueError(f"norm_position must be 'post' or 'pre', got {norm_position!r}")
        self.norm_position = norm_position
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.act1 = activation(act)
        self.norm1 = norm2d(norm, dim)
        self.pwconv = nn.Conv2d(dim, dim, 1)
        self.act2 = activation(act)
        self.norm2 = norm2d(norm, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_position == "post":
            x = x + self.drop_path(self.norm1(self.act1(self.dwconv(x))))
            return self.norm2(self.act2(self.pwconv(x)))
        x = x + self.drop_path(self.act1(self.dwconv(self.norm1(x))))
        return x + self.drop_path(self.act2(self.pwconv(self.norm2(x))))


def attention_heads(dim: int, head_dim: int) -> int:
    """Heads of an attention layer of width ``dim``: ``dim // head_dim``, at least one.

    A stage narrower than ``head_dim`` (e.g. ``lale_s1``'s 24 and 48 channels at 1/4 and 1/8,
    in the attention ablation) gets one head of its full width; otherwise the width must split
    evenly into the heads.

    Raises:
        ValueError: ``dim`` does not split evenly into the heads.
    """
    heads = max(1, dim // head_dim)
    if dim % heads != 0:
        raise ValueError(
            f"attention width {dim} does not split into {heads} heads of {head_dim} channels"
        )
    return heads


class Attention(nn.Module):
    """Multi-head self-attention over ``B×N×C`` tokens via ``scaled_dot_product_attention``.

    Heads: :func:`attention_heads` (``dim // head_dim``, at least one, of ``dim / heads``
    channels each).
    """

    def __init__(self, dim: int, head_dim: int = 32, qkv_bias: bool = False) -> None:
        super().__init__()
        self.heads = attention_heads(dim, head_dim)
        self.head_dim = dim // self.heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``Linear(d → r·d) · StarReLU · Linear(r·d → d)`` without biases (MetaFormer)."""

    def __init__(self, dim: int, ratio: float = 4.0, act: ActKind = "starrelu") -> None:
        super().__init__()
        hidden = round(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm MetaFormer block on tokens: ``x + Attn(norm(x))``, then ``x + MLP(norm(x))``."""

    def __init__(
        self,
        dim: int,
        head_dim: int = 32,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        norm: NormKind = "rms",
        act: ActKind = "starrelu",
    ) -> None:
        super().__init__()
        self.norm1 = token_norm(norm, dim)
        self.attn = Attention(dim, head_dim)
        self.norm2 = token_norm(norm, dim)
        self.mlp = Mlp(dim, mlp_ratio, act)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ConvMlp(nn.Module):
    """``Linear(d → r·d) · depthwise k×k · StarReLU · Linear(r·d → d)`` on a ``B×C×H×W`` map.

    The two linears are bias-free 1×1 convolutions (as :class:`Mlp`); the depthwise convolution
    between them (SegFormer's Mix-FFN order) also gives the tokens their position.
    """

    def __init__(
        self, dim: int, ratio: float = 4.0, kernel_size: int = 3, act: ActKind = "starrelu"
    ) -> None:
        super().__init__()
        hidden = round(dim * ratio)
        self.fc1 = nn.Conv2d(dim, hidden, 1, bias=False)
        self.dwconv = nn.Conv2d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden
        )
        self.act = activation(act)
        self.fc2 = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class ConvMlpTransformerBlock(nn.Module):
    """Pre-norm block on a ``B×C×H×W`` map: ``x + Attn(norm(x))``, then ``x + ConvMlp(norm(x))``.

    Tokens exist only inside attention (the map is flattened there and reshaped back). The
    norms work on the map, so ``norm="classic"`` gives BatchNorm here.
    """

    def __init__(
        self,
        dim: int,
        head_dim: int = 32,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        norm: NormKind = "rms",
        act: ActKind = "starrelu",
    ) -> None:
        super().__init__()
        self.norm1 = norm2d(norm, dim)
        self.attn = Attention(dim, head_dim)
        self.norm2 = norm2d(norm, dim)
        self.mlp = ConvMlp(dim, mlp_ratio, act=act)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.attn(self.norm1(x).flatten(2).transpose(1, 2))
        x = x + self.drop_path(tokens.transpose(1, 2).reshape(b, c, h, w))
        return x + self.drop_path(self.mlp(self.norm2(x)))
