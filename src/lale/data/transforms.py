"""Batch augmentations and normalisation: torch ops on ``B×C×H×W`` images and ``B×H×W`` masks.

The training recipe's flips, rot90 and brightness/contrast, then normalisation
(docs/design.md#augmentations). Geometric ops move image and mask together, and every random
choice comes from one CPU generator, so a batch is the same on CPU and GPU. Run them on the
training device, after the batch has moved there.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from lale.data.augment import AugmentConfig
from lale.data.schema import ClassSchema, ImageSpec

__all__ = [
    "AugmentConfig",
    "BatchTransform",
    "Normalize",
    "brightness_contrast_params",
    "eval_transform",
    "normalize_input",
    "random_brightness_contrast",
    "random_flip",
    "random_geometry",
    "random_rot90",
    "train_transform",
]


def _check(image: Tensor, mask: Tensor) -> None:
    if image.ndim != 4 or mask.ndim != 3 or image.shape[:1] + image.shape[2:] != mask.shape:
        raise ValueError(
            f"expected a B×C×H×W image and a B×H×W mask, got {tuple(image.shape)} and "
            f"{tuple(mask.shape)}"
        )


def _chosen(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """``n`` CPU booleans, each true with probability ``p`` (always draws ``n`` numbers)."""
    return torch.rand(n, generator=generator) < p


def _dihedral(image: Tensor, mask: Tensor, flip: Tensor, turns: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample: flip left–right where ``flip``, then rotate by ``turns``·90° (CPU tensors).

    Samples are grouped by their transform (at most 8 groups): each group is gathered, moved
    and copied back as one batch — no per-sample loop, and no full-batch copies for the rest.
    """
    code = flip.long() * 4 + turns.long() % 4
    if not code.any():
        return image, mask
    if image.shape[-1] != image.shape[-2] and bool((code % 2).any()):
        raise ValueError(f"rot90 needs square samples, got {tuple(image.shape[-2:])}")
    out_image, out_mask = torch.empty_like(image), torch.empty_like(mask)
    for c in code.unique().tolist():
        idx = torch.nonzero(code == c).squeeze(1).to(image.device)
        x, m = image.index_select(0, idx), mask.index_select(0, idx)
        if c == 6:  # flip, then half a turn: a vertical flip
            x, m = x.flip(-2), m.flip(-2)
        else:
            if c >= 4:
                x, m = x.flip(-1), m.flip(-1)
            if c % 4:
                x, m = x.rot90(c % 4, (-2, -1)), m.rot90(c % 4, (-2, -1))
        out_image.index_copy_(0, idx, x)
        out_mask.index_copy_(0, idx, m)
    return out_image, out_mask


def _flip_draws(n: int, p: float, dim: int, generator: torch.Generator | None) -> Tensor:
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 (horizontal) or -2 (vertical), got {dim}")
    return _chosen(n, p, generator)


def _rot_draws(image: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Quarter turns per sample: 1, 2 or 3 (equally likely) with probability ``p``, else 0."""
    if p > 0 and image.shape[-1] != image.shape[-2]:  # fail always, not on an unlucky draw
        raise ValueError(f"rot90 needs square samples, got {tuple(image.shape[-2:])}")
    n = image.shape[0]
    sel = _chosen(n, p, generator)
    return torch.randint(1, 4, (n,), generator=generator) * sel


def random_flip(
    image: Tensor, mask: Tensor, p: float, dim: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Flip each sample along ``dim`` (-1: horizontal, -2: vertical) with probability ``p``."""
    _check(image, mask)
    sel = _flip_draws(image.shape[0], p, dim, generator)
    # A vertical flip is a horizontal flip followed by half a turn.
    return _dihedral(image, mask, sel, sel * 2 if dim == -2 else torch.zeros_like(sel))


def random_rot90(
    image: Tensor, mask: Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Rotate each sample by k·90° (k = 1, 2, 3 equally likely) with probability ``p``.

    Raises:
        ValueError: ``p > 0`` and the samples are not square.
    """
    _check(image, mask)
    turns = _rot_draws(image, p, generator)
    return _dihedral(image, mask, torch.zeros_like(turns, dtype=torch.bool), turns)


def random_geometry(
    image: Tensor, mask: Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Horizontal flip, vertical flip, then rot90, each with its own probability, in one pass.

    Draws exactly what :func:`random_flip` (-1, then -2) and :func:`random_rot90` draw in
    sequence, and gives the same result; composing the three first moves each pixel once.
    """
    _check(image, mask)
    n = image.shape[0]
    h = _flip_draws(n, config.hflip, -1, generator)
    v = _flip_draws(n, config.vflip, -2, generator)
    k = _rot_draws(image, config.rot90, generator)
    # vflip = half a turn after an hflip, and flips commute with half turns:
    # rot(k) ∘ vflip^v ∘ hflip^h = rot(k + 2v) ∘ hflip^(h xor v).
    return _dihedral(image, mask, h ^ v, k + 2 * v.long())


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
    alpha, beta = brightness_contrast_params(image.shape[0], p, brightness, contrast, generator)
    alpha = alpha.to(image.device, image.dtype).view(-1, 1, 1, 1)
    beta = beta.to(image.device, image.dtype).view(-1, 1, 1, 1)
    out = torch.addcmul(beta, image, alpha)
    return out if clip is None else out.clamp_(*clip)


def brightness_contrast_params(
    n: int, p: float, brightness: float, contrast: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Per-sample CPU ``(α, β)`` of :func:`random_brightness_contrast`; ``(1, 0)`` if unchosen."""
    sel = _chosen(n, p, generator)
    alpha = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * contrast
    beta = (torch.rand(n, generator=generator) * 2 - 1) * brightness
    return torch.where(sel, alpha, 1.0), torch.where(sel, beta, 0.0)


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

    def __call__(
        self,
        image: Tensor,
        alpha: Tensor | None = None,
        beta: Tensor | None = None,
        clip: tuple[float, float] | None = None,
    ) -> Tensor:
        """Scale and standardise a ``B×C×H×W`` (or ``C×H×W``) batch in one fused pass.

        With per-sample ``alpha``/``beta`` (``B`` values) the brightness/contrast change
        ``α·x + β`` and the ``clip`` to a scaled range are folded in as well: the result equals
        ``standardize(random_brightness_contrast(scale(x)))`` with those draws.
        """
        c = image.shape[-3]
        if c != self.mean.shape[1]:
            raise ValueError(f"{c} channels, statistics for {self.mean.shape[1]}")
        inv = 1.0 / (self.spec.scale * self.std)  # 1×C×1×1
        shift = self.spec.offset / self.spec.scale
        if alpha is None or beta is None:
            a, b = inv, (shift - self.mean) / self.std
        else:
            al, be = alpha.view(-1, 1, 1, 1).float(), beta.view(-1, 1, 1, 1).float()
            a, b = al * inv, (al * shift + be - self.mean) / self.std
        if image.ndim == 3:
            a, b = a[0], b[0]
        dev = image.device
        out = torch.addcmul(b.to(dev), image.to(torch.float32), a.to(dev))
        if clip is not None:
            lo = ((clip[0] - self.mean) / self.std).to(dev)
            hi = ((clip[1] - self.mean) / self.std).to(dev)
            out.clamp_(lo[0] if image.ndim == 3 else lo, hi[0] if image.ndim == 3 else hi)
        return out


@functools.lru_cache(maxsize=16)
def _normalizer(spec: ImageSpec) -> Normalize:
    return Normalize(spec)


def normalize_input(image: Tensor, spec: ImageSpec) -> Tensor:
    """Model input of raw samples: float32 ``((x + offset) / scale - mean) / std`` per channel.

    The one way lale feeds a model outside the augmented training step: validation and test,
    ``lale evaluate``, the sample figures and prediction all go through it.

    Args:
        image: Raw ``B×C×H×W`` (or ``C×H×W``) samples, any dtype, on any device.
        spec: Scaling and statistics (a run's: ``RunConfig.image_spec()``).
    """
    try:
        normalize = _normalizer(spec)
    except TypeError:  # a spec holding lists is not hashable
        normalize = Normalize(spec)
    return normalize(image)


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
            return normalize_input(image, self.normalize.spec), mask.long()
        image, mask = random_geometry(image, mask, a, g)
        n = image.shape[0]
        alpha, beta = brightness_contrast_params(
            n, a.brightness_contrast, a.brightness, a.contrast, g
        )
        return self.normalize(image, alpha, beta, self.clip), mask.long()


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
