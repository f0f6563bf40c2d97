"""The comparison models, untrained, built with segmentation-models-pytorch (SMP) and timm.

SMP architectures (``unet`` … ``upernet`` with a ResNet-18 encoder, ``segformer`` with ``mit_b0``;
any SMP encoder by name) and timm backbones under the SegFormer head (``deit3_small`` under DPT),
each wrapped in :class:`AnySize` and built with ``encoder_weights=None``. What each backbone
needs to run at 256² and other sizes: docs/baselines.md.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lale.models.registry import register_model

# Registry name -> SMP architecture name.
ARCHITECTURES = {
    "unet": "unet",
    "unetplusplus": "unetplusplus",
    "linknet": "linknet",
    "fpn": "fpn",
    "pan": "pan",
    "deeplabv3": "deeplabv3",
    "deeplabv3plus": "deeplabv3plus",
    "upernet": "upernet",
    "segformer": "segformer",
}
# Encoders that build with every architecture above; quoted in error messages (tested).
SUGGESTED_ENCODERS = ("resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2")
# Architectures that need a dilated encoder (``output_stride`` < 32).
_DILATED = frozenset({"pan", "deeplabv3", "deeplabv3plus"})
_BUILD_ERRORS = (ValueError, KeyError, TypeError, RuntimeError, AssertionError)


class AnySize(nn.Module):
    """Run a segmentation network on inputs of any height and width.

    Pads ``B x C x H x W`` at the bottom/right (reflect; replicate where the pad is not smaller
    than the side) to the smallest size that is at least ``min_size`` and a multiple of
    ``multiple``, runs ``model`` and crops its logits back to ``H x W``.

    Args:
        model: The wrapped network (kept as ``.model``).
        multiple: H and W are padded to a multiple of this.
        min_size: Smallest H and W the network accepts (e.g. PAN's pyramid pooling).
        max_size: Largest H and W the network accepts (fixed-size networks); ``None``: any.
    """

    def __init__(
        self, model: nn.Module, multiple: int = 32, min_size: int = 0, max_size: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.multiple = multiple
        self.min_size = min_size
        self.max_size = max_size

    def padded_size(self, size: int) -> int:
        """The side length an input side of ``size`` is padded to."""
        padded = max(-(-size // self.multiple) * self.multiple, self.min_size)
        if self.max_size is not None and padded > self.max_size:
            raise ValueError(
                f"input side {size} exceeds this model's fixed size {self.max_size}; "
                "use tiled inference or rebuild it with a larger img_size"
            )
        return padded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = self.padded_size(h) - h, self.padded_size(w) - w
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.model(x)[..., :h, :w]


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


def build_baseline(
    num_classes: int = 7,
    in_channels: int = 3,
    *,
    arch: str,
    encoder_name: str,
    **kwargs: Any,
) -> AnySize:
    """Build an SMP architecture with a randomly initialised encoder, accepting any H, W.

    Args:
        num_classes: Logit channels.
        in_channels: Input bands (any number; SMP adapts the first convolution).
        arch: SMP architecture name (``"unet"``, ``"upernet"``, ``"dpt"``, ...).
        encoder_name: SMP encoder (``"resnet18"``, ``"mit_b0"``) or timm one (``"tu-..."``).
        **kwargs: Passed to the SMP model (decoder options; timm options for ``tu-`` encoders).

    Returns:
        The SMP model wrapped in :class:`AnySize`.

    Raises:
        ValueError: The encoder cannot serve this architecture (the message says why).
        ImportError: segmentation-models-pytorch / timm are not installed.
    """
    smp = _import_smp()
    kwargs = dict(kwargs)
    if kwargs.pop("encoder_weights", None) is not None:
        raise ValueError("lale builds baselines untrained: encoder_weights must be None")
    try:
        rules = _encoder_quirks(arch, encoder_name, kwargs)
        model = smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=None,
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


# The backbone table: name, SMP architecture, default encoder, description, extra defaults.
_Row = tuple[str, str, str, str, dict[str, Any]]
BACKBONES: tuple[_Row, ...] = (
    ("fastvit_t8", "segformer", "tu-fastvit_t8", "FastViT-T8 + SegFormer head", {}),
    ("maxvit_nano", "segformer", "tu-maxvit_nano_rw_256", "MaxViT-nano + SegFormer head", {}),
    ("efficientvit_b0", "segformer", "tu-efficientvit_b0", "EfficientViT-B0 + SegFormer head", {}),
    (
        "mobilenetv4_small",
        "segformer",
        "tu-mobilenetv4_conv_small",
        "MobileNetV4-conv-small + SegFormer head",
        {},
    ),
    ("mit_b0", "segformer", "mit_b0", "MiT-B0 + SegFormer head (= SegFormer-B0)", {}),
    ("swinv2_tiny", "segformer", "tu-swinv2_tiny_window8_256", "Swin V2-T + SegFormer head", {}),
    (
        "efficientformerv2_s0",
        "segformer",
        "tu-efficientformerv2_s0",
        "EfficientFormerV2-S0 + SegFormer head (fixed 256x256 input)",
        {},
    ),
    (
        "deit3_small",
        "dpt",
        "tu-deit3_small_patch16_224",
        "DeiT III-S + DPT decoder (DPT-Base widths)",
        {"decoder_intermediate_channels": (96, 192, 384, 768)},
    ),
)


def _register_all() -> None:
    decoders: list[_Row] = [
        (name, arch, "mit_b0" if arch == "segformer" else "resnet18", "", {})
        for name, arch in ARCHITECTURES.items()
    ]
    for name, arch, encoder, description, extra in (*decoders, *BACKBONES):
        register_model(
            name,
            functools.partial(build_baseline, arch=arch),
            family="baseline",
            description=description or f"SMP {arch}, {encoder} encoder by default",
            requires="baselines",
            encoder_name=encoder,
            **extra,
        )


_register_all()
