"""LALE's encoders as timm models: ``timm.create_model("lale_s1")`` and ``smp.Unet("tu-lale_s1")``.

Importing :mod:`lale.models` registers every LALE variant with timm's ``register_model``, so
the usual timm calls work on them::

    timm.create_model("lale_s1", num_classes=1000)     # a classifier: encoder → pool → head
    timm.create_model("lale_s1", features_only=True)   # the 1/4 … 1/32 feature maps
    smp.Unet("tu-lale_s1", encoder_weights=None)       # SMP decoders on LALE's encoder

The classifier keeps the segmentation network's encoder under the same names
(``encoder.stem…``, ``encoder.stages…``), so weights learnt by ``lale pretrain`` initialise
``lale train`` by name, and its head is timm's: global average pooling, RMSNorm, dropout and
a linear classifier (``head.fc``). ``features_only`` goes through ``forward_intermediates``
(timm's ``FeatureGetterNet``), the path timm's own hierarchical transformers take.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import SelectAdaptivePool2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from lale.models.network import (
    LALE_B,
    LALE_L,
    LALE_S,
    LALE_S1,
    LALE_S2,
    LALE_T,
    REDUCTIONS,
    LaleConfig,
    LaleEncoder,
    _init_weights,
)

__all__ = ["TIMM_VARIANTS", "LaleClassifier", "timm_config"]

TIMM_VARIANTS: dict[str, LaleConfig] = {
    "lale_t": LALE_T,
    "lale_s": LALE_S,
    "lale_b": LALE_B,
    "lale_l": LALE_L,
    "lale_s1": LALE_S1,
    "lale_s2": LALE_S2,
}
"""The LALE variants registered with timm, by name (the same names as lale's registry)."""


class LaleHead(nn.Module):
    """Global pooling → RMSNorm → dropout → linear (``fc`` is timm's ``classifier``)."""

    def __init__(self, dim: int, num_classes: int, pool_type: str, drop_rate: float) -> None:
        super().__init__()
        self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=True)
        self.norm = nn.RMSNorm(dim)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.norm(self.global_pool(x)))
        return x if pre_logits else self.fc(x)


class LaleClassifier(nn.Module):
    """A LALE encoder with a classification head, in timm's model interface.

    Args:
        cfg: The architecture (the decoder fields are not used).
        num_classes: Classes of the head; 0 leaves the pooled features (``num_features``).
        in_chans: Input bands.
        global_pool: timm pooling type (``"avg"``, ``"max"``, ``"avgmax"``, ...).
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic depth over the encoder's blocks (``None``: ``cfg``'s).
    """

    def __init__(
        self,
        cfg: LaleConfig,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        drop_path_rate: float | None = None,
        **config: Any,
    ) -> None:
        super().__init__()
        if drop_path_rate is not None:
            config["drop_path_rate"] = drop_path_rate
        for key in ("dims", "depths", "mixers"):
            if key in config:
                config[key] = tuple(config[key])
        self.config = replace(cfg, **config)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.num_features = self.head_hidden_size = self.config.dims[-1]
        self.encoder = LaleEncoder(in_chans, self.config)
        self.head = LaleHead(self.num_features, num_classes, global_pool, drop_rate)
        self.feature_info = [
            {"num_chs": dim, "reduction": r, "module": f"encoder.stages.{i}"}
            for i, (dim, r) in enumerate(zip(self.config.dims, REDUCTIONS, strict=True))
        ]
        self.apply(_init_weights)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The final linear layer (timm's ``classifier``)."""
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh head for ``num_classes`` (0: pooled features), optionally a new pooling."""
        self.num_classes = num_classes
        pool = global_pool if global_pool is not None else self.head.global_pool.pool_type
        self.head = LaleHead(self.num_features, num_classes, pool or "", self.drop_rate)
        self.head.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1/32 feature map, ``B × num_features × H/32 × W/32``."""
        return self.encoder(x)[-1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify a feature map (``pre_logits``: stop before ``head.fc``)."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's intermediate-feature interface: the stage outputs at ``indices``.

        Args:
            x: Input images.
            indices: Stages to return (an int: the last that many; ``None``: all four).
            norm: Accepted for timm; LALE has no final norm before the head.
            stop_early: Stop after the last stage asked for.
            output_fmt: ``"NCHW"`` only.
            intermediates_only: Return the list alone, without the final feature map.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"LALE gives NCHW features, not {output_fmt!r}")
        stages = len(self.encoder.stages)
        take, last = feature_take_indices(stages, indices)
        encoder = self.encoder
        x = encoder.stem(x)
        wanted = []
        n = last + 1 if stop_early else stages
        for i in range(n):
            x = encoder.stages[i](encoder.downsamples[i](x))
            if i in take:
                wanted.append(x)
        return wanted if intermediates_only else (x, wanted)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last of ``indices`` (and the head); returns the indices."""
        take, last = feature_take_indices(len(self.encoder.stages), indices)
        self.encoder.stages = self.encoder.stages[: last + 1]
        self.encoder.downsamples = self.encoder.downsamples[: last + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take


def _cfg(**overrides: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "encoder.stem.conv1",
        "classifier": "head.fc",
        "license": "apache-2.0",
        **overrides,
    }


default_cfgs = generate_default_cfgs({name: _cfg() for name in TIMM_VARIANTS})


def timm_config(name: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` timm holds for LALE variant ``name`` (mean, std, input size, ...)."""
    import timm

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        raise KeyError(f"{name!r} is not a LALE model registered with timm")
    return cfg.to_dict()


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> LaleClassifier:
    model: LaleClassifier = build_model_with_cfg(
        LaleClassifier,
        variant,
        pretrained,
        cfg=TIMM_VARIANTS[variant],
        feature_cfg={"feature_cls": "getter", "out_indices": (0, 1, 2, 3)},
        **kwargs,
    )
    return model


def _register(name: str) -> None:
    def builder(pretrained: bool = False, **kwargs: Any) -> LaleClassifier:
        return _create(name, pretrained=pretrained, **kwargs)

    builder.__name__ = name  # timm registers a builder under its function name
    builder.__qualname__ = name
    builder.__doc__ = f"LALE {name[5:].upper()} as a timm model (classifier or features_only)."
    register_model(builder)


for _name in TIMM_VARIANTS:
    _register(_name)
