"""Per-band image statistics of a split, computed in one streaming pass.

Normalisation for inputs other than three-channel imagery uses per-band mean and standard
deviation stored with the schema (``schema.with_normalization(stats.mean, stats.std)``).
They are computed over a training split one image at a time — memory holds one image — and
combined with Chan et al.'s parallel update, which stays accurate over millions of pixels.
Non-finite samples (NaN no-data in float rasters) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lale.data.dataset import scan_split
from lale.data.io import read_image
from lale.data.schema import ARAS400K, ClassSchema, load_schema

__all__ = ["BandStats", "compute_band_stats"]


@dataclass(frozen=True)
class BandStats:
    """Mean and standard deviation of each selected band, in scaled units.

    Attributes:
        mean: Per-band mean of ``(raw + offset) / scale``.
        std: Per-band (population) standard deviation.
        pixels: Finite samples counted per band.
        images: Images read.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    pixels: tuple[int, ...]
    images: int


def compute_band_stats(
    root: str | Path,
    split: str = "train",
    schema: ClassSchema | str | Path = ARAS400K,
    *,
    max_images: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BandStats:
    """Per-band mean/std over the images of ``root/split``, streaming.

    Args:
        root: Dataset root (ARAS400k layout).
        split: The split to measure; normally the training split.
        schema: Gives the bands to read and the scaling; a name or file is loaded.
        max_images: Only the first this many images (sorted by name); ``None``: all.
        progress: Optional ``progress(done, total)`` callback.

    Raises:
        DataError: The split is malformed or an image unreadable or not as the schema says.
        ValueError: A band has no finite sample or zero variance.
    """
    spec = load_schema(schema).image
    pairs = scan_split(root, split)[:max_images]
    count = np.zeros(spec.channels, np.int64)
    mean = np.zeros(spec.channels, np.float64)
    m2 = np.zeros(spec.channels, np.float64)  # sum of squared deviations from the mean
    for i, pair in enumerate(pairs):
        x = read_image(pair.image, spec).reshape(spec.channels, -1).astype(np.float64)
        x = (x + spec.offset) / spec.scale
        finite = np.isfinite(x)
        n = finite.sum(axis=1)
        xs = np.where(finite, x, 0.0)
        m = xs.sum(axis=1) / np.maximum(n, 1)
        d2 = np.where(finite, (xs - m[:, None]) ** 2, 0.0).sum(axis=1)
        total = count + n
        delta = m - mean
        w = n / np.maximum(total, 1)
        mean = mean + delta * w
        m2 = m2 + d2 + delta**2 * count * w
        count = total
        if progress is not None:
            progress(i + 1, len(pairs))
    std = np.sqrt(m2 / np.maximum(count, 1))
    if (count == 0).any() or not (std > 0).all():
        raise ValueError(f"bands without finite samples or variation: counts {count}, std {std}")
    return BandStats(
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        pixels=tuple(int(v) for v in count),
        images=len(pairs),
    )
