"""WorldCover-like labels: the true layout seen through a blobby 10 m classifier.

ESA WorldCover, ARAS400k's label source, is itself a model's output: boundaries are displaced by
a pixel or two and smoothed, and features narrower than about two pixels vanish. We mimic that by
sampling the true class map through a smooth random displacement field and then taking a 3×3
majority vote.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lale.data.synthetic.noise import coords, smooth_field


def majority3(labels: NDArray[np.uint8], num_classes: int) -> NDArray[np.uint8]:
    """3×3 majority filter (edges replicated); the centre pixel wins ties.

    Only boundary pixels can change (a pixel whose four direct neighbours share its class
    already holds five of the nine votes), so votes are counted for those alone.
    """
    w = labels.shape[1]
    p = np.pad(labels, 1, mode="edge")
    c = p[1:-1, 1:-1]
    edge = (p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c) | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c)
    idx = np.flatnonzero(edge)
    out = labels.copy()
    if idx.size == 0:
        return out
    top_left = (idx // w) * (w + 2) + idx % w
    offsets = (np.arange(3)[:, None] * (w + 2) + np.arange(3)[None, :]).ravel()
    neigh = p.ravel()[top_left[:, None] + offsets]  # n × 9
    votes = 2 * (neigh[:, :, None] == np.arange(num_classes, dtype=np.uint8)).sum(axis=1)
    centre = labels.ravel()[idx]
    votes[np.arange(idx.size), centre] += 1
    out.ravel()[idx] = votes.argmax(axis=1)
    return out


def worldcover_labels(
    classes: NDArray[np.uint8],
    rng: np.random.Generator,
    num_classes: int = 7,
    max_shift: float = 2.5,
) -> NDArray[np.uint8]:
    """Noisy label map of the true ``classes``: smooth boundary jitter, then a majority vote.

    Args:
        classes: True class map ``H×W`` (square).
        rng: Random generator (consumed deterministically).
        num_classes: Number of classes in ``classes``.
        max_shift: Upper bound of the per-scene displacement scale (standard deviation, pixels).
    """
    s = classes.shape[0]
    yy, xx = coords(s)
    amp = rng.uniform(0.6, max_shift)
    field = smooth_field(rng, s, cells=21, octaves=2) * np.float32(amp)
    dy, dx = field, field.T  # the transpose is an independent-looking second field
    yi = np.clip(np.rint(yy + dy), 0, s - 1).astype(np.intp)
    xi = np.clip(np.rint(xx + dx), 0, s - 1).astype(np.intp)
    yi *= s
    yi += xi
    return majority3(np.take(classes, yi), num_classes)
