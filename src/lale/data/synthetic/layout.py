"""The true land-cover layout of a synthetic scene (what is on the ground, before any labelling).

A scene is built in this order, later steps overriding earlier ones: terrain fields → natural
cover (barren ridges, forest, shrubland, grassland) by thresholding noise fields at quantiles that
realise per-scene target fractions → cropland as straight-edged strip parcels in cadastral blocks
→ lakes or a coast with shores → a winding river with riparian trees → settlements with street
grids → roads (image only, as in ESA WorldCover, which does not map most roads).

The per-scene target fractions are a Dirichlet draw around ARAS400k-like means (grass and tree
dominate, shrub is rare), so most patches hold only a few classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lale.data.schema.aras import BARREN, BUILT_UP, CROP, GRASS, SHRUB, TREE, WATER
from lale.data.synthetic.noise import (
    F32,
    U32,
    coords,
    hash_quad,
    hash_u32,
    hash_unit,
    quantile,
    sigmoid,
    smooth_field,
)
from lale.data.synthetic.settlements import add_settlements, roads
from lale.data.synthetic.water import add_lake, add_river

# Mean target fractions in ARAS400k class order (Tree, Shrub, Grass, Crop, Built-up, Barren,
# Water) and the Dirichlet concentration (small: patches are dominated by a few classes).
MEAN_FRACTIONS = np.array([0.27, 0.035, 0.345, 0.19, 0.045, 0.07, 0.045])
MAX_SHRUB = 0.3
CONCENTRATION = 2.5
MIN_FRACTION = 0.015

# Parcel kinds.
NO_PARCEL, FIELD, ORCHARD, FALLOW = 0, 1, 2, 3


@dataclass
class Layout:
    """Ground truth of one scene plus the per-pixel fields the renderer needs (all ``H×W``).

    Attributes:
        classes: True ARAS400k class index per pixel (uint8).
        elevation: Zero-mean terrain height incl. detail, for hill shading.
        relief: Scene relief strength (0 flat … 1 mountainous).
        greenness: Smooth field (≈N(0, 1)) modulating grass colour.
        detail: Smooth field (≈N(0, 1)) at ~100 m scale, for mottling.
        tree_density: Canopy density 0–1; ≥ ~0.7 inside forest, sparse trees outside.
        shrub_density: Shrub clump density 0–1; high in shrubland, scattered in grassland.
        bareness: Bare-ground cover 0–1; ≥ ~0.7 on barren land, soft at its edges.
        parcel: Hash identifying the crop parcel of each pixel (valid where ``parcel_kind > 0``).
        parcel_kind: 0 none, 1 field, 2 orchard, 3 fallow (labelled grass).
        parcel_angle: Orientation (radians) of the parcel's strips.
        water_depth: 0 on land, rising to 1 away from the shore.
        water_cover: Sub-pixel water fraction 0–1 (antialiased rivers, 1 in lakes).
        shore: Beach / bare shore strength 0–1.
        urban: House probability 0–1 (high in town centres, ~0.1 at village fringes).
        street: Street coverage 0–1 inside settlements.
        lot: Hash of the building lot (valid where ``urban > 0``).
        road: Road coverage 0–1 (drawn in the image, not in the labels).
    """

    classes: NDArray[np.uint8]
    elevation: F32
    relief: float
    greenness: F32
    detail: F32
    tree_density: F32
    shrub_density: F32
    bareness: F32
    parcel: U32
    parcel_kind: NDArray[np.uint8]
    parcel_angle: F32
    water_depth: F32
    water_cover: F32
    shore: F32
    urban: F32
    street: F32
    lot: U32
    road: F32


def target_fractions(rng: np.random.Generator) -> NDArray[np.float64]:
    """Per-scene class fractions: Dirichlet around :data:`MEAN_FRACTIONS`, tiny ones zeroed."""
    f = rng.dirichlet(MEAN_FRACTIONS * CONCENTRATION)
    f[SHRUB] = min(f[SHRUB], MAX_SHRUB)
    f[f < MIN_FRACTION] = 0.0
    return np.asarray(f / f.sum())


def build_layout(rng: np.random.Generator, size: int = 256) -> Layout:
    """Draw one scene's true layout."""
    yy, xx = coords(size)
    frac = target_fractions(rng)
    relief = float(rng.uniform(0.1, 1.0))
    elev = smooth_field(rng, size, cells=2, octaves=4)
    detail = smooth_field(rng, size, cells=24, octaves=2)
    z = np.zeros((size, size), np.float32)

    # Cropland parcels, chosen where an agriculture score (low, flat ground) is highest.
    parcel = np.zeros((size, size), np.uint32)
    kind = np.zeros((size, size), np.uint8)
    angle, block_edge = z, z
    if frac[CROP] > 0:
        parcel, angle, centre, block_edge = _parcels(rng, size, yy, xx)
        ag = smooth_field(rng, size, cells=2, octaves=2) - 0.8 * relief * elev
        zone = np.take(ag, centre) > quantile(ag, 1.0 - frac[CROP])
        u = hash_unit(parcel, 11)
        kind = np.where(zone, np.where(u < 0.06, FALLOW, np.where(u < 0.11, ORCHARD, FIELD)), 0)
        kind = kind.astype(np.uint8)
    crop_zone = kind > 0
    natural = ~crop_zone

    # Natural cover in the remaining area, fractions renormalised over the natural classes:
    # barren first (ridges, or 30 % of scenes lowland flats), then forest, shrub, grass.
    nat = frac[[BARREN, TREE, SHRUB, GRASS]]
    nat = nat / max(nat.sum(), 1e-9)
    ridge = 1.0 if rng.random() < 0.7 else -0.6
    bar_field = smooth_field(rng, size, cells=4, octaves=3)
    bar_score = ridge * relief * elev + 0.8 * bar_field
    b_thr = quantile(bar_score, 1.0 - nat[0], natural)
    barren = natural & (bar_score > b_thr)
    free = natural & ~barren
    tree_score = 0.9 * relief * elev + smooth_field(rng, size, cells=3, octaves=4, persistence=0.6)
    t_thr = quantile(tree_score, 1.0 - nat[1] / max(1.0 - nat[0], 1e-9), free)
    tree = free & (tree_score > t_thr)
    free &= ~tree
    shrub_field = smooth_field(rng, size, cells=6, octaves=3)
    shrub_score = shrub_field  # maquis concentrates near forest edges
    if np.isfinite(t_thr):
        shrub_score = shrub_score - 0.5 * np.abs(tree_score - t_thr)
    s_thr = quantile(shrub_score, 1.0 - nat[2] / max(nat[2] + nat[3], 1e-9), free)
    shrub = free & (shrub_score > s_thr)

    classes = np.full((size, size), GRASS, np.uint8)
    classes[barren] = BARREN
    classes[tree] = TREE
    classes[shrub] = SHRUB
    classes[kind == FIELD] = CROP
    classes[kind == ORCHARD] = CROP
    bareness = sigmoid(6.0 * (bar_score - b_thr) + 0.5) * natural
    open_land = natural * (1.0 - bareness)
    tree_density = sigmoid(5.0 * (tree_score - t_thr) + 1.2) * open_land
    shrub_density = sigmoid(3.0 * (shrub_score - s_thr) + 0.6) * open_land * ~tree

    water_depth, water_cover, shore = z.copy(), z.copy(), z.copy()
    if frac[WATER] > 0:
        add_lake(
            rng,
            size,
            yy,
            xx,
            elev,
            relief,
            float(frac[WATER]),
            shrub_field.T,
            classes,
            water_depth,
            water_cover,
            shore,
        )
        bareness = np.maximum(bareness, shore * (classes == BARREN))
    if rng.random() < 0.3:
        add_river(
            rng, size, yy, xx, classes, crop_zone, tree_density, bareness, water_cover, water_depth
        )
    urban, street, lot = z.copy(), z.copy(), np.zeros((size, size), np.uint32)
    if frac[BUILT_UP] > 0:
        add_settlements(
            rng,
            size,
            yy,
            xx,
            elev,
            float(frac[BUILT_UP]),
            detail[::-1],
            classes,
            urban,
            street,
            lot,
        )
    has_town = bool(urban.max() > 0.5)
    road = roads(rng, size, yy, xx, urban) if rng.random() < (0.7 if has_town else 0.2) else z
    if crop_zone.any() and rng.random() < 0.5:  # field roads along the cadastral cuts
        road = np.maximum(road, block_edge * crop_zone * 0.8)
    road = road * (classes != WATER)

    return Layout(
        classes=classes,
        elevation=np.asarray(elev + 0.035 * (1.0 - 2.0 * np.abs(detail)), np.float32),
        relief=relief,
        greenness=np.ascontiguousarray(bar_field[:, ::-1].T),
        detail=detail,
        tree_density=tree_density,
        shrub_density=shrub_density,
        bareness=bareness,
        parcel=parcel,
        parcel_kind=kind,
        parcel_angle=angle,
        water_depth=water_depth,
        water_cover=water_cover,
        shore=shore,
        urban=urban,
        street=street,
        lot=lot,
        road=road,
    )


def _parcels(
    rng: np.random.Generator, size: int, yy: F32, xx: F32
) -> tuple[U32, F32, NDArray[np.intp], F32]:
    """Strip parcels in cadastral blocks cut by 1–3 straight lines, each block with its own grid.

    Returns the parcel hash, the strip orientation, the flat index of the parcel's centre pixel
    (for every pixel), and the antialiased block-boundary lines (field roads).
    """
    n_cuts = int(rng.integers(1, 4))
    block = np.zeros((size, size), np.uint8)
    cut_line = np.zeros((size, size), np.float32)
    for i in range(n_cuts):
        a = rng.uniform(0, math.pi)
        c = rng.uniform(0.2, 0.8) * size
        d = (xx - size / 2) * math.cos(a) + (yy - size / 2) * math.sin(a) + (size / 2 - c)
        block |= (d > 0).view(np.uint8) << np.uint8(i)
        np.maximum(cut_line, 1.0 - np.abs(d), out=cut_line)
    np.clip(cut_line, 0.0, 1.0, out=cut_line)
    nb = 1 << n_cuts
    theta = rng.uniform(0, math.pi) + rng.choice([0.0, math.pi / 2], nb) + rng.normal(0, 0.25, nb)
    cos = np.cos(theta).astype(np.float32)[block]
    sin = np.sin(theta).astype(np.float32)[block]
    w = rng.uniform(5.0, 16.0, nb).astype(np.float32)[block]
    length = rng.uniform(8.0, 40.0, nb).astype(np.float32)[block]
    u = xx * cos + yy * sin
    v = yy * cos - xx * sin
    row = np.floor(v / w)
    row_key = block.astype(np.int32) * 7919 + row.astype(np.int32)
    salt = int(rng.integers(1 << 30))
    h_len, h_off, _, _ = hash_quad(row_key, salt)
    ln = length * (0.4 + 1.2 * h_len.reshape(size, size))
    off = h_off.reshape(size, size) * ln
    col = np.floor((u + off) / ln)
    key = row_key.astype(np.uint32) * np.uint32(104_729) + col.astype(np.int32).astype(np.uint32)
    parcel = hash_u32(key + np.uint32(salt))
    uc = (col + 0.5) * ln - off
    vc = (row + 0.5) * w
    cx = np.clip(uc * cos - vc * sin, 0, size - 1).astype(np.intp)
    cy = np.clip(uc * sin + vc * cos, 0, size - 1).astype(np.intp)
    cy *= size
    cy += cx
    angle = np.arctan2(sin, cos)
    return parcel, angle, cy, cut_line
