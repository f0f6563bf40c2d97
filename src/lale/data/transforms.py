"""Batch augmentations and normalisation: torch ops on ``B×C×H×W`` images and ``B×H×W`` masks.

The training recipe (DESIGN.md §4): horizontal flip, vertical flip and a random rot90 (p 0.5
each), brightness/contrast (p 0.3), then normalisation (ImageNet mean/std for three channels,
the schema's per-band statistics otherwise). Every geometric op moves image and mask together,
so ignore pixels stay ignore pixels. Each sample draws its own random choices, all from one
CPU ``torch.Generator`` in a fixed order: the same generator state gives the same batch on CPU
or GPU, and no op loops over samples.

Images arrive in their file sample type (uint8, or float32 of raw values) and are scaled to
``(raw + offset) / scale`` before brightness/contrast and normalisation; run the transforms on
the device that trains, after the batch has been moved there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lale.data.schema import ClassSchema, ImageSpec

__all__ = [
    "AugmentConfig",
    "BatchTransform",
    "Normalize",
    "eval_transform",
    "random_brightness_contrast",
    "random_flip",
    "random_rot90",
    "train_transform",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths of the training augmentations (the ARAS400k recipe).

    Attributes:
        hflip: Probability of a horizontal flip (left–right).
        vflip: Probability of a vertical flip (top–bottom).
        rot90: Probability of a rotation by 90°, 180° or 270° (equally likely).
        brightness_contrast: Probability of a brightness/contrast change.
        brightness: Brightness shift drawn from ``±brightness`` (scaled units, 1 = full range).
        contrast: Contrast factor drawn from ``1 ± contrast``.
    """

    hflip: float = 0.5
    vflip: float = 0.5
    rot90: float = 0.5
    brightness_contrast: float = 0.3
    brightness: float = 0.2
    contrast: float = 0.2

    def __post_init__(self) -> None:
        for key in ("hflip", "vflip", "rot90", "brightness_contrast"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} is a probability, got {getattr(self, key)}")
        if self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ValueError("brightness must be >= 0 and contrast in [0, 1)")


def _check(image: Tensor, mask: Tensor) -> None:
    if image.ndim != 4 or mask.ndim != 3 or image.shape[:1] + image.shape[2:] != mask.shape:
        raise ValueError(
            f"expected a B×C×H×W image and a B×H×W mask, got {tuple(image.shape)} and "
            f"{tuple(mask.shape)}"
        )


def _chosen(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """``n`` CPU booleans, each true with probability ``p`` (always draws ``n`` numbers)."""
    return torch.rand(n, generator=generator) < p


def random_flip(
    image: Tensor, mask: Tensor, p: float, dim: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Flip each sample along ``dim`` (-1: horizontal, -2: vertical) with probability ``p``."""
    _check(image, mask)
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 (horizontal) or -2 (vertical), got {dim}")
    sel = _chosen(image.shape[0], p, generator).to(image.device)
    image = torch.where(sel.view(-1, 1, 1, 1), image.flip(dim), image)
    mask = torch.where(sel.view(-1, 1, 1), mask.flip(dim), mask)
    return image, mask


def random_rot90(
    image: Tensor, mask: Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Rotate each sample by k·90° (k = 1, 2, 3 equally likely) with probability ``p``.

    Raises:
        ValueError: The samples are not square (a rotation would change their shape).
    """
    _check(image, mask)
    sel = _chosen(image.shape[0], p, generator)
    k = torch.randint(1, 4, (image.shape[0],), generator=generator)
    if not sel.any():
        return image, mask
    if image.shape[-1] != image.shape[-2]:
        raise ValueError(f"rot90 needs square samples, got {tuple(image.shape[-2:])}")
    image, mask = image.clone(), mask.clone()
    for turns in (1, 2, 3):
        idx = torch.nonzero(sel & (k == turns)).squeeze(1).to(image.device)
        if idx.numel():
            image[idx] = image[idx].rot90(turns, (-2, -1))
            mask[idx] = mask[idx].rot90(turns, (-2, -1))
    return image, mask


def random_brightness_contrast(
    image: Tensor,
    p: float,
    brightness: float = 0.2,
    contrast: float = 0.2,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> Tensor:
    """``x · α + β`` per sample with probability ``p``, ``α ∈ 1 ± contrast``, ``β ∈ ±brightness``.

    As albumentations' ``RandomBrightnessContrast`` on scaled (0…1) images; the result is
    clipped to ``clip`` unless it is ``None``.

    Args:
        image: ``B×C×H×W`` float images in scaled units.
        p: Probability per sample.
        brightness: Largest shift (1 = the full 0…1 range).
        contrast: Largest relative change of the contrast factor.
        generator: Source of the random draws.
        clip: Value range to clip to, or ``None``.
    """
    n = image.shape[0]
    sel = _chosen(n, p, generator)
    alpha = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * contrast
    beta = (torch.rand(n, generator=generator) * 2 - 1) * brightness
    alpha = torch.where(sel, alpha, 1.0).to(image.device, image.dtype).view(-1, 1, 1, 1)
    beta = torch.where(sel, beta, 0.0).to(image.device, image.dtype).view(-1, 1, 1, 1)
    out = torch.addcmul(beta, image, alpha)
    return out if clip is None else out.clamp_(*clip)


class Normalize:
    """Scale raw samples and normalise them: ``((x + offset) / scale - mean) / std`` per channel.

    Args:
        spec: The image spec giving scale, offset and (or defaulting) mean/std.

    Raises:
        ValueError: ``spec`` has no statistics and not three channels (see
            :meth:`~lale.data.schema.ImageSpec.normalization`).
    """

    def __init__(self, spec: ImageSpec) -> None:
        mean, std = spec.normalization()
        self.spec = spec
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def scale(self, image: Tensor) -> Tensor:
        """Float32 ``(x + offset) / scale``."""
        x = image.float()
        if self.spec.offset:
            x = x + self.spec.offset
        return x / self.spec.scale

    def standardize(self, scaled: Tensor) -> Tensor:
        """``(x - mean) / std`` of already scaled images."""
        if scaled.shape[-3] != self.mean.shape[1]:
            raise ValueError(f"{scaled.shape[-3]} channels, statistics for {self.mean.shape[1]}")
        return (scaled - self.mean.to(scaled.device)) / self.std.to(scaled.device)

    def __call__(self, image: Tensor) -> Tensor:
        """Scale and standardise a ``B×C×H×W`` (or ``C×H×W``) image batch in one pass."""
        c = image.shape[-3]
        if c != self.mean.shape[1]:
            raise ValueError(f"{c} channels, statistics for {self.mean.shape[1]}")
        a = 1.0 / (self.spec.scale * self.std)
        b = (self.spec.offset / self.spec.scale - self.mean) / self.std
        shape = (-1, 1, 1) if image.ndim == 3 else (1, -1, 1, 1)
        dev = image.device
        return torch.addcmul(b.to(dev).view(shape), image.float(), a.to(dev).view(shape))


class BatchTransform:
    """Augment (optionally) and normalise a batch; returns model-ready tensors.

    Args:
        spec: The image spec (scaling and statistics).
        augment: Augmentations to apply (``None``: normalisation only, for evaluation).
        generator: CPU generator for the random draws (``None``: torch's global one).
        clip: Range the brightness/contrast result is clipped to, in scaled units; default
            ``(0, 1)`` for 8-bit images and no clipping otherwise.

    Call it with ``(image, mask)``: ``B×C×H×W`` in any sample type and ``B×H×W`` labels; it
    returns the float32 normalised images and the labels as int64 (ready for a loss).
    """

    def __init__(
        self,
        spec: ImageSpec,
        augment: AugmentConfig | None = None,
        generator: torch.Generator | None = None,
        clip: tuple[float, float] | None = None,
    ) -> None:
        self.normalize = Normalize(spec)
        self.augment, self.generator = augment, generator
        self.clip = clip if clip is not None or spec.dtype != "uint8" else (0.0, 1.0)

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        _check(image, mask)
        a, g = self.augment, self.generator
        if a is None:
            return self.normalize(image), mask.long()
        image, mask = random_flip(image, mask, a.hflip, -1, g)
        image, mask = random_flip(image, mask, a.vflip, -2, g)
        image, mask = random_rot90(image, mask, a.rot90, g)
        x = self.normalize.scale(image)
        x = random_brightness_contrast(
            x, a.brightness_contrast, a.brightness, a.contrast, g, self.clip
        )
        return self.normalize.standardize(x), mask.long()


def train_transform(
    schema: ClassSchema,
    augment: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
) -> BatchTransform:
    """The training batch transform: the recipe's augmentations, then normalisation."""
    return BatchTransform(schema.image, augment or AugmentConfig(), generator)


def eval_transform(schema: ClassSchema) -> BatchTransform:
    """The evaluation batch transform: normalisation only."""
    return BatchTransform(schema.image, None)
