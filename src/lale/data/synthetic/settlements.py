"""Settlements (irregular towns with street grids and building lots) and roads."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from lale.data.schema.aras import BUILT_UP, WATER
from lale.data.synthetic.noise import F32, U32, hash_u32


def add_settlements(
    rng: np.random.Generator,
    size: int,
    yy: F32,
    xx: F32,
    elev: F32,
    frac: float,
    shape: F32,
    classes: NDArray[np.uint8],
    urban: F32,
    street: F32,
    lot: U32,
) -> None:
    """Irregular town blobs on low ground, a rotated street grid, building lots; in place.

    Work is done in a window around each town. Lots (1.5–2.5 px, i.e. 15–25 m) are aligned with
    the streets; the renderer draws one roof per lot.
    """
    area_left = frac * size * size
    salt = int(rng.integers(1 << 30))
    for i in range(6):
        radius = float(np.clip(np.sqrt(area_left / np.pi) * rng.uniform(0.5, 1.0), 3.0, 0.4 * size))
        cand = rng.uniform(0, size, (5, 2))
        best = np.argmin(elev[cand[:, 0].astype(int), cand[:, 1].astype(int)])
        cy, cx = float(cand[best, 0]), float(cand[best, 1])
        r = int(1.8 * radius) + 2
        sl = (
            slice(max(0, int(cy) - r), min(size, int(cy) + r)),
            slice(max(0, int(cx) - r), min(size, int(cx) + r)),
        )
        y, x = yy[sl] - cy, xx[sl] - cx
        d = np.sqrt(x * x + y * y) / radius + 0.35 * shape[sl]
        dry = classes[sl] != WATER
        blob = (d < 1.0) & dry
        houses = np.where(blob, 0.5 + 0.5 * np.clip(1.4 * (1.0 - d), 0, 1), 0.0)
        fringe = np.clip((1.6 - d) * 0.25, 0.0, 0.15) * dry
        urban[sl] = np.maximum(urban[sl], np.maximum(houses, fringe))
        a = rng.uniform(0, math.pi)
        gu = x * math.cos(a) + y * math.sin(a)
        gv = -x * math.sin(a) + y * math.cos(a)
        bu, bv = (float(b) for b in rng.uniform(4.0, 9.0, 2))
        lines = np.maximum(
            np.clip(1.0 - np.abs(gu / bu - np.round(gu / bu)) * bu, 0, 1),
            np.clip(1.0 - np.abs(gv / bv - np.round(gv / bv)) * bv, 0, 1),
        )
        street[sl] = np.maximum(street[sl], lines * blob * rng.uniform(0.55, 0.9))
        lu, lv = bu / round(bu / 2.0), bv / round(bv / 2.0)
        key = np.floor(gu / lu).astype(np.int64) * 7919 + np.floor(gv / lv).astype(np.int64)
        lot[sl] = np.where(urban[sl] > 0, hash_u32(key + (salt + 104_729 * i)), lot[sl])
        classes[sl][blob] = BUILT_UP
        area_left -= float(blob.sum())
        if area_left < 25:
            break


def roads(rng: np.random.Generator, size: int, yy: F32, xx: F32, urban: F32) -> F32:
    """One or two gently curving roads, through the densest settlement when there is one."""
    road = np.zeros((size, size), np.float32)
    if urban.max() > 0.5:
        iy, ix = np.unravel_index(int(np.argmax(urban)), urban.shape)
        cy, cx = float(iy), float(ix)
    else:
        cy, cx = (float(c) * size for c in rng.uniform(0.2, 0.8, 2))
    for _ in range(int(rng.integers(1, 3))):
        a = rng.uniform(0, math.pi)
        u = (xx - cx) * math.cos(a) + (yy - cy) * math.sin(a)
        v = -(xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)
        lam, amp = rng.uniform(120, 400), rng.uniform(0, 8)
        v = v - amp * np.sin(u * (2 * math.pi / lam) + rng.uniform(0, 2 * math.pi))
        road = np.maximum(road, np.clip(rng.uniform(0.8, 1.3) - np.abs(v), 0.0, 1.0))
    return road
