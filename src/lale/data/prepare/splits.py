"""Deterministic, spatially blocked train / val / test split of prepared patches.

Patches are grouped into blocks of ``k×k`` neighbouring patches of one tile, and a whole block
goes to one split, so neighbouring patches rarely land on both sides (only across block borders).
The blocks, sorted and then shuffled with the seed, are laid end to end, each as long as its
number of patches, and the line is cut at the split fractions; a block goes to the split where
its middle falls. Each split's patch count is therefore within one block of its fraction of the
total, and the same blocks and seed always give the same split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
"""Split names, in the order of the fractions."""
BlockKey = tuple[str, int, int]
"""``(tile stem, block row, block column)``."""


def block_of(stem: str, row: int, col: int, block: int) -> BlockKey:
    """Block of patch ``(row, col)`` of tile ``stem`` for ``block×block`` blocks."""
    return stem, row // block, col // block


def assign_splits(
    sizes: Mapping[BlockKey, int], fractions: Sequence[float], seed: int
) -> dict[BlockKey, str]:
    """Split of each block (see the module docstring).

    Args:
        sizes: Number of patches of each block.
        fractions: Train, val and test fractions (non-negative, summing to 1).
        seed: Seed of the block shuffle.
    """
    if len(fractions) != len(SPLITS):
        raise ValueError(f"expected {len(SPLITS)} fractions, got {list(fractions)}")
    keys = sorted(sizes)
    cuts = np.cumsum(fractions)[:-1] * sum(sizes.values())
    done = 0
    out: dict[BlockKey, str] = {}
    for i in np.random.default_rng(seed).permutation(len(keys)):
        key = keys[int(i)]
        middle = done + sizes[key] / 2
        out[key] = SPLITS[int(np.searchsorted(cuts, middle, side="right"))]
        done += sizes[key]
    return out
