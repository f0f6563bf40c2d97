"""Water in a synthetic scene: lakes or a sea coast with shores, and meandering rivers.

Both work in place on the layout arrays passed in (classes, depth, cover, …).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from lale.data.schema.aras import BARREN, BUILT_UP, TREE, WATER
from lale.data.synthetic.noise import F32


def add_lake(
    rng: np.random.Generator,
    size: int,
    yy: F32,
    xx: F32,
    elev: F32,
    relief: float,
    frac: float,
    shape: F32,
    classes: NDArray[np.uint8],
    depth: F32,
    cover: F32,
    shore: F32,
) -> None:
    """A lake in a low spot, or (25 %) a sea coast entering from outside the patch; in place."""
    if rng.random() < 0.25:  # coast: a huge disc centred outside the patch
        ang = rng.uniform(0, 2 * math.pi)
        radius = size * rng.uniform(0.9, 1.6)
        reach = radius + size * (0.5 - 2.2 * min(frac, 0.4))
        cx = size / 2 + math.cos(ang) * reach
        cy = size / 2 + math.sin(ang) * reach
    else:
        radius = float(np.clip(np.sqrt(frac * size * size / np.pi), 5.0, 0.6 * size))
        cand = rng.uniform(0, size, (6, 2))
        best = np.argmin(elev[cand[:, 0].astype(int), cand[:, 1].astype(int)])
        cy, cx = float(cand[best, 0]), float(cand[best, 1])
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / radius
    level = dist + (0.12 * shape + 0.15 * relief * elev) * min(1.0, 30.0 / radius + 0.15)
    water = level < 1.0
    if water.mean() > 0.85:  # ARAS400k drops patches that are > 90 % water
        return
    classes[water] = WATER
    depth[:] = np.clip((1.0 - level) * radius / 6.0, 0.0, 1.0)
    cover[water] = 1.0
    if rng.random() < 0.6:
        band = rng.uniform(1.0, 3.5) / radius
        beach = np.clip(1.0 - (level - 1.0) / band, 0.0, 1.0) * ~water
        shore[:] = beach * rng.uniform(0.5, 1.0)
        if band * radius > 2.0:
            classes[(beach > 0.5) & (classes != BUILT_UP)] = BARREN


def add_river(
    rng: np.random.Generator,
    size: int,
    yy: F32,
    xx: F32,
    classes: NDArray[np.uint8],
    crop_zone: NDArray[np.bool_],
    tree_density: F32,
    bareness: F32,
    cover: F32,
    depth: F32,
) -> None:
    """A meandering river (sum of sines along a random axis), riparian trees, gravel bars."""
    a = rng.uniform(0, math.pi)
    ca, sa = math.cos(a), math.sin(a)
    u = (xx - size / 2) * ca + (yy - size / 2) * sa
    v = -(xx - size / 2) * sa + (yy - size / 2) * ca
    lam = [float(x) for x in rng.uniform([90.0, 25.0, 60.0], [260.0, 70.0, 200.0])]
    amp = [min(float(x), lam[i] / 8.0) for i, x in enumerate(rng.uniform([4.0, 0.5], [22.0, 5.0]))]
    ph = [float(x) for x in rng.uniform(0, 2 * math.pi, 3)]
    k = [2 * math.pi / x for x in lam]
    offset = rng.uniform(-0.3, 0.3) * size
    centre = offset + amp[0] * np.sin(k[0] * u + ph[0]) + amp[1] * np.sin(k[1] * u + ph[1])
    slope = amp[0] * k[0] * np.cos(k[0] * u + ph[0]) + amp[1] * k[1] * np.cos(k[1] * u + ph[1])
    dist = np.abs(v - centre) / np.sqrt(1.0 + slope * slope)
    half = rng.uniform(0.5, 2.5) * (1.0 + 0.3 * np.sin(k[2] * u + ph[2]))
    river = np.clip(half - dist + 0.5, 0.0, 1.0).astype(np.float32)
    wet = river >= 0.5
    land = ~wet & ~crop_zone & (classes != WATER)
    if rng.random() < 0.7:  # riparian trees on natural ground
        reach = half + rng.uniform(1.5, 5.0)
        rip = (dist < reach) & land & (classes != BARREN)
        classes[rip] = TREE
        bareness[rip] = 0.0
        tree_density[rip] = np.maximum(tree_density[rip], 0.9)
    if float(half.max()) > 1.5 and rng.random() < 0.4:  # gravel bars, here and there
        side = np.sin(k[1] * 0.7 * u + ph[2]) * np.sign(v - centre) > 0.3
        bars = (dist < half + 2.5) & side & land
        classes[bars] = BARREN
        bareness[bars] = 0.8
        tree_density[bars] = 0.0
    classes[wet] = WATER
    np.maximum(cover, river, out=cover)
    np.maximum(depth, 0.3 * river, out=depth)
