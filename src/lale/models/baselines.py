"""The comparison models, untrained, built with segmentation-models-pytorch (SMP) and timm.

SMP architectures (``unet`` … ``upernet`` with an EfficientNet-B0 encoder, ``segformer`` with
``mit_b0``; any SMP encoder by name) and timm backbones under the SegFormer head (``deit3_small``
and ``deit3_base`` under DPT, ``maxvit_tiny`` under U-Net),
each wrapped in :class:`AnySize`; randomly initialised unless ``pretrained=True`` (ImageNet
encoder weights from the local Hugging Face cache: :mod:`lale.models.pretrained`). What each
backbone needs to run at 256² and other sizes: docs/baselines.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lale.models.padding import AnySize
from lale.models.registry import register_model

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "DECODERS",
    "SUGGESTED_ENCODERS",
    "AnySize",
    "build_baseline",
]

# Encoders that build with every architecture in DECODERS; quoted in error messages (tested).
SUGGESTED_ENCODERS = ("resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2")
# Architectures that need a dilated encoder (``output_stride`` < 32).
_DILATED = frozenset({"pan", "deeplabv3", "deeplabv3plus"})
_BUILD_ERRORS = (ValueError, KeyError, TypeError, RuntimeError, AssertionError)


def _import_smp() -> Any:
    """Import SMP (and timm) lazily, after making torchvision importable."""
    from lale import _torchvision_compat

    _torchvision_compat.install()
    try:
        import segmentation_models_pytorch as smp
    except ImportError as err:
        raise ImportError(
            f"baseline models need segmentation-models-pytorch and timm ({err}); "
            "install them with: pip install 'lale[baselines]'"
        ) from err
    return smp


def _timm_img_size(encoder_name: str, kwargs: dict[str, Any]) -> int:
    """``img_size`` of a ``tu-`` encoder: the override, else timm's default for the model."""
    if "img_size" in kwargs:
        return int(kwargs["img_size"])
    import timm

    cfg = timm.get_pretrained_cfg(encoder_name[3:].split(".")[0])
    if cfg is None:
        raise ValueError(f"encoder {encoder_name!r} declares no input size: pass img_size=...")
    return int(cfg.input_size[-1])


def _encoder_quirks(arch: str, encoder_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Adapt ``kwargs`` to the encoder's quirks (in place); return :class:`AnySize` arguments.

    The quirks are listed in docs/baselines.md; keyed on the encoder, so they also apply
    when such an encoder is chosen by name for another decoder (``"upernet:tu-swinv2_..."``).
    """
    rules: dict[str, Any] = {"multiple": 32}
    if arch == "pan":  # feature pyramid attention pools the 1/16 map three times by 2
        rules["min_size"] = 8 * int(kwargs.get("encoder_output_stride", 16))
    name = encoder_name.lower()
    if name.startswith("tu-swinv2_") and not name.startswith("tu-swinv2_cr"):
        kwargs.setdefault("dynamic_img_size", True)
    elif name.startswith(("tu-deit", "tu-vit")):
        kwargs.setdefault("img_size", 256)
        kwargs.setdefault("dynamic_img_size", True)
        kwargs.setdefault("num_classes", 0)  # DPT reads block outputs: no head, no final norm
        kwargs.setdefault("final_norm", False)
    elif name.startswith("tu-maxvit"):
        rules["multiple"] = _timm_img_size(encoder_name, kwargs)
    elif name.startswith("tu-efficientformerv2"):
        size = kwargs.setdefault("img_size", 256)
        rules.update(min_size=size, max_size=size)
    return rules


def _reason(err: BaseException, arch: str) -> str:
    """One line saying why SMP/timm refused, without SMP's full encoder list."""
    text = str(err).strip().strip("\"'")
    if isinstance(err, KeyError) and "Wrong encoder name" in text:
        return "it is not an SMP encoder (timm models need the 'tu-' prefix)"
    if "mit_b" in text and "support" in text:
        return f"SMP's {arch} decoder needs a 1/2-scale feature map and MiT starts at 1/4"
    if "Unknown model" in text:
        return "timm has no such model"
    if "output_stride" in text or ("dilat" in text.lower() and arch in _DILATED):
        return f"{arch} needs a dilated encoder (output_stride < 32) and this one has none"
    if "downsampling pattern" in text:
        return "it has no 1/4...1/32 feature pyramid (a plain ViT: use 'deit3_small', i.e. DPT)"
    return (text.splitlines() or [type(err).__name__])[0][:200]


def _hub_cache_only(pretrained: bool) -> AbstractContextManager[None]:
    if not pretrained:
        return nullcontext()
    from lale.models.pretrained import cached_only

    return cached_only()


def build_baseline(
    num_classes: int = 7,
    in_channels: int = 3,
    *,
    arch: str,
    encoder_name: str,
    pretrained: bool = False,
    **kwargs: Any,
) -> AnySize:
    """Build an SMP architecture, accepting any H, W.

    Args:
        num_classes: Logit channels.
        in_channels: Input bands (any number; SMP adapts the first convolution).
        arch: SMP architecture name (``"unet"``, ``"upernet"``, ``"dpt"``, ...).
        encoder_name: SMP encoder (``"resnet18"``, ``"mit_b0"``) or timm one (``"tu-..."``).
        pretrained: Start the encoder from its ImageNet weights (SMP's ``"imagenet"``, timm's
            default pretrained tag), found in or fetched into the Hugging Face cache first;
            otherwise it is randomly initialised.
        **kwargs: Passed to the SMP model (decoder options; timm options for ``tu-`` encoders).

    Returns:
        The SMP model wrapped in :class:`AnySize`.

    Raises:
        ValueError: The encoder cannot serve this architecture (the message says why).
        ImportError: segmentation-models-pytorch / timm are not installed.
        UsageError: ``pretrained`` for an encoder without published ImageNet weights.
        UnavailableError: ``pretrained`` and the weights are neither cached nor fetchable.
    """
    smp = _import_smp()
    kwargs = dict(kwargs)
    if kwargs.pop("encoder_weights", None) is not None:
        raise ValueError("encoder_weights is not an option here: use pretrained=True")
    weights: str | bool | None = None
    if pretrained:
        from lale.models.pretrained import ensure_cached

        ensure_cached(encoder_name)
        weights = True if encoder_name.startswith("tu-") else "imagenet"
    try:
        rules = _encoder_quirks(arch, encoder_name, kwargs)
        with _hub_cache_only(weights is not None):
            model = smp.create_model(
                arch,
                encoder_name=encoder_name,
                encoder_weights=weights,
                in_channels=in_channels,
                classes=num_classes,
                **kwargs,
            )
    except _BUILD_ERRORS as err:
        raise ValueError(
            f"architecture {arch!r} cannot use encoder {encoder_name!r}: {_reason(err, arch)}; "
            f"valid encoders include {', '.join(SUGGESTED_ENCODERS)}"
        ) from err
    return AnySize(model, **rules)


@dataclass(frozen=True)
class Baseline:
    """One row of the baseline tables: a registered name and what it builds.

    Attributes:
        name: Registry name.
        arch: SMP architecture.
        encoder: Default encoder (SMP name, or ``"tu-"`` + timm name).
        description: One line for tables and ``--help``.
        extra: Further default keyword arguments of the SMP model.
    """

    name: str
    arch: str
    encoder: str
    description: str
    extra: Mapping[str, Any] = field(default_factory=dict)


# SMP decoders under their own names, with the paper's "EfficientNet-backboned" default encoder.
DECODERS: tuple[Baseline, ...] = (
    Baseline("unet", "unet", "efficientnet-b0", "SMP unet, efficientnet-b0 encoder by default"),
    Baseline(
        "unetplusplus",
        "unetplusplus",
        "efficientnet-b0",
        "SMP unetplusplus, efficientnet-b0 encoder by default",
    ),
    Baseline(
        "linknet", "linknet", "efficientnet-b0", "SMP linknet, efficientnet-b0 encoder by default"
    ),
    Baseline("fpn", "fpn", "efficientnet-b0", "SMP fpn, efficientnet-b0 encoder by default"),
    Baseline("pan", "pan", "efficientnet-b0", "SMP pan, efficientnet-b0 encoder by default"),
    Baseline(
        "deeplabv3",
        "deeplabv3",
        "efficientnet-b0",
        "SMP deeplabv3, efficientnet-b0 encoder by default",
    ),
    Baseline(
        "deeplabv3plus",
        "deeplabv3plus",
        "efficientnet-b0",
        "SMP deeplabv3plus, efficientnet-b0 encoder by default",
    ),
    Baseline(
        "upernet", "upernet", "efficientnet-b0", "SMP upernet, efficientnet-b0 encoder by default"
    ),
    Baseline("segformer", "segformer", "mit_b0", "SMP segformer, mit_b0 encoder by default"),
)
# Transformer / hybrid backbones under short names, with a SegFormer head (DPT for DeiT III).
BACKBONES: tuple[Baseline, ...] = (
    Baseline("fastvit_t8", "segformer", "tu-fastvit_t8", "FastViT-T8 + SegFormer head"),
    Baseline("maxvit_nano", "segformer", "tu-maxvit_nano_rw_256", "MaxViT-nano + SegFormer head"),
    Baseline(
        "efficientvit_b0", "segformer", "tu-efficientvit_b0", "EfficientViT-B0 + SegFormer head"
    ),
    Baseline(
        "mobilenetv4_small",
        "segformer",
        "tu-mobilenetv4_conv_small",
        "MobileNetV4-conv-small + SegFormer head",
    ),
    Baseline("mit_b0", "segformer", "mit_b0", "MiT-B0 + SegFormer head (= SegFormer-B0)"),
    Baseline(
        "swinv2_tiny", "segformer", "tu-swinv2_tiny_window8_256", "Swin V2-T + SegFormer head"
    ),
    Baseline(
        "efficientformerv2_s0",
        "segformer",
        "tu-efficientformerv2_s0",
        "EfficientFormerV2-S0 + SegFormer head (fixed 256x256 input)",
    ),
    Baseline(
        "deit3_small",
        "dpt",
        "tu-deit3_small_patch16_224",
        "DeiT III-S + DPT decoder (DPT-Base widths)",
        {"decoder_intermediate_channels": (96, 192, 384, 768)},
    ),
    # The paper's heavy rows; head widths calibrated to its totals (docs/baselines.md).
    Baseline(
        "deit3_base",
        "dpt",
        "tu-deit3_base_patch16_224",
        "DeiT III-B + DPT decoder (fusion 160), the paper's DeiT3-Base",
        {"decoder_fusion_channels": 160},
    ),
    Baseline(
        "maxvit_tiny",
        "unet",
        "tu-maxvit_tiny_rw_256",
        "MaxViT-T + U-Net decoder (1024, 768, 128, 64, 32), the paper's MaxViT-Tiny",
        {"decoder_channels": (1024, 768, 128, 64, 32)},
    ),
)
ARCHITECTURES: Mapping[str, str] = MappingProxyType({row.name: row.arch for row in DECODERS})
"""Registry name -> SMP architecture name, for the decoders."""

for _row in (*DECODERS, *BACKBONES):
    register_model(
        _row.name,
        functools.partial(build_baseline, arch=_row.arch),
        family="baseline",
        description=_row.description,
        requires="baselines",
        encoder_name=_row.encoder,
        **_row.extra,
    )
