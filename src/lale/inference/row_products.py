"""What a finished band of rows becomes: class indices, confidence and per-class probabilities.

numpy only (no torch), so every backend shares it. From ``K×h×w`` float32 logits and an ``h×w``
validity mask, :func:`row_products` gives

- the class map: uint8 index of the largest logit (the first on ties, as ``argmax``), 255 on
  no-data pixels;
- the confidence: uint8 ``round(255 · max softmax)``, clipped to 1…255 on valid pixels (the
  maximum softmax is at least ``1/K``), 0 on no-data pixels;
- the probabilities: ``K×h×w`` uint8 ``round(255 · softmax)``, 0 on no-data pixels (the written
  raster masks them); multiply by :data:`PROBABILITY_SCALE` to read them back.

The softmax is computed as ``exp(l_k − max_l) / Σ exp(l_j − max_l)``, one class at a time, so the
temporaries are a few ``h×w`` arrays whatever ``K`` is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PROBABILITY_SCALE", "RowProducts", "row_products"]

PROBABILITY_SCALE = 1 / 255
"""Probability of one unit of a uint8 probability or confidence sample."""


@dataclass(frozen=True)
class RowProducts:
    """One band of rows of the outputs.

    Attributes:
        classes: ``h×w`` uint8 class indices, 255 = no data.
        confidence: ``h×w`` uint8 max softmax × 255 (0 = no data), if asked for.
        probabilities: ``K×h×w`` uint8 softmax × 255 (0 on no data), if asked for.
    """

    classes: NDArray[np.uint8]
    confidence: NDArray[np.uint8] | None = None
    probabilities: NDArray[np.uint8] | None = None


def _to_uint8(p: NDArray[np.float32], low: int = 0) -> NDArray[np.uint8]:
    scaled = np.multiply(p, np.float32(255), out=p)
    return np.clip(np.rint(scaled, out=scaled), low, 255, out=scaled).astype(np.uint8)


def row_products(
    logits: NDArray[np.floating],
    valid: NDArray[np.bool_],
    *,
    confidence: bool = False,
    probabilities: bool = False,
) -> RowProducts:
    """Class indices (and confidence, probabilities) of ``K×h×w`` logits.

    Args:
        logits: Blended logits of the rows, ``K×h×w`` (any float type; read, not changed).
        valid: ``h×w``, False where the input holds no data.
        confidence: Also compute the confidence.
        probabilities: Also compute the per-class probabilities.
    """
    logits = np.asarray(logits)
    valid = np.asarray(valid, dtype=bool)
    k = logits.shape[0]
    if k > 255:
        raise ValueError(f"at most 255 classes fit a uint8 class map, got {k}")
    best = logits[0].astype(np.float32, copy=True)
    classes = np.zeros(best.shape, dtype=np.uint8)
    for c in range(1, k):
        higher = logits[c] > best
        classes[higher] = c
        np.maximum(best, logits[c], out=best)
    classes[~valid] = 255
    conf = probs = None
    if confidence or probabilities:
        total = np.zeros_like(best)
        for c in range(k):
            total += np.exp(logits[c] - best)
        if confidence:
            conf = _to_uint8(np.reciprocal(total), low=1)
            conf[~valid] = 0
        if probabilities:
            probs = np.empty(logits.shape, dtype=np.uint8)
            for c in range(k):
                probs[c] = _to_uint8(np.exp(logits[c] - best) / total)
            probs[:, ~valid] = 0
    return RowProducts(classes, conf, probs)
