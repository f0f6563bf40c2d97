"""The training augmentations' settings, as plain data (no torch: a run's config records them).

The operations themselves are in :mod:`lale.data.transforms` (docs/design.md#augmentations).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AugmentConfig"]


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
