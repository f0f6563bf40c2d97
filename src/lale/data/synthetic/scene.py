"""One synthetic scene: layout → (rendered image, WorldCover-like labels)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lale.data.synthetic.labels import worldcover_labels
from lale.data.synthetic.layout import build_layout
from lale.data.synthetic.render import render

Seed = int | np.random.SeedSequence | np.random.Generator


def generate_scene(
    rng_or_seed: Seed, size: int = 256
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Generate one Sentinel-2-like land-cover patch with ARAS400k labels.

    The image is rendered from the true layout; the labels are that layout seen through a blobby
    10 m classifier (see :mod:`lale.data.synthetic.labels`), like the ESA WorldCover labels of
    ARAS400k.

    Args:
        rng_or_seed: A ``numpy.random.Generator`` (consumed), or a seed / ``SeedSequence``.
        size: Patch side in pixels (10 m each); 256 gives ARAS400k's 2.56 km patches.

    Returns:
        ``(image, labels)``: ``size×size×3`` uint8 true colour and ``size×size`` uint8 class
        indices in ARAS400k order (0 Tree … 6 Water).
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    rng = (
        rng_or_seed
        if isinstance(rng_or_seed, np.random.Generator)
        else (np.random.default_rng(rng_or_seed))
    )
    layout = build_layout(rng, size)
    image = render(layout, rng)
    labels = worldcover_labels(layout.classes, rng)
    return image, labels
