"""How the images of a dataset are read, scaled and normalised: :class:`ImageSpec`.

Part of every :class:`~lale.data.schema.ClassSchema`: the band count every file must have, the
bands fed to the model, the sample type, the scaling ``(raw + offset) / scale`` and the
per-channel mean/std used for normalisation (ImageNet's for three channels when not given).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageSpec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _floats(v: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if v is None else tuple(float(x) for x in v)


@dataclass(frozen=True)
class ImageSpec:
    """How to read and scale the images of a dataset.

    Attributes:
        band_count: Bands every image file must have (3 = 8-bit RGB by default).
        bands: 1-based bands fed to the model, in this order (e.g. ``(4, 3, 2)``); ``None`` = all.
        band_names: Optional names of the selected channels (recorded with checkpoints).
        dtype: Sample type every image must have (numpy name, e.g. ``"uint16"``);
            ``None`` accepts any.
        scale: Divisor of ``(raw + offset)``: 255 maps 8-bit to 0..1, 10000 Sentinel-2 DN to
            reflectance, 1 leaves float reflectance as it is.
        offset: Added to raw samples before dividing (e.g. -1000 for Sentinel-2 L2A since 2022).
        mean: Per-channel mean of the scaled samples; ``None`` = ImageNet's for three channels.
        std: Per-channel standard deviation of the scaled samples, as ``mean``.
    """

    band_count: int = 3
    bands: tuple[int, ...] | None = None
    band_names: tuple[str, ...] | None = None
    dtype: str | None = "uint8"
    scale: float = 255.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        if self.band_count < 1:
            raise ValueError(f"band_count must be >= 1, got {self.band_count}")
        if self.bands is not None:
            put("bands", tuple(int(b) for b in self.bands))
            if not self.bands or not all(1 <= b <= self.band_count for b in self.bands):
                raise ValueError(f"bands {self.bands} must be 1-based in 1..{self.band_count}")
        if self.band_names is not None:
            put("band_names", tuple(str(n) for n in self.band_names))
            if len(self.band_names) != self.channels:
                raise ValueError(f"{len(self.band_names)} band names for {self.channels} bands")
        if self.dtype is not None:
            put("dtype", np.dtype(self.dtype).name)
        put("scale", float(self.scale))
        put("offset", float(self.offset))
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"scale must be finite and non-zero, got {self.scale}")
        for key in ("mean", "std"):
            stat = _floats(getattr(self, key))
            put(key, stat)
            if stat is not None and len(stat) != self.channels:
                raise ValueError(f"{key} has {len(stat)} values for {self.channels} channels")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        if self.std is not None and not all(s > 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def channels(self) -> int:
        """Number of channels fed to the model (selected bands)."""
        return self.band_count if self.bands is None else len(self.bands)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` per channel, in scaled units.

        Raises:
            ValueError: No statistics are stored and the input does not have three channels.
        """
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        if self.channels == 3:
            return IMAGENET_MEAN, IMAGENET_STD
        raise ValueError(
            f"no per-band mean/std for {self.channels}-channel images: compute them with "
            "lale.data.stats.compute_band_stats and store them with schema.with_normalization"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        if extra := sorted(set(data) - known):
            raise ValueError(f"unknown image keys {extra}; expected some of {sorted(known)}")
        return cls(**dict(data))
