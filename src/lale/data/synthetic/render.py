"""Render a :class:`~lale.data.synthetic.layout.Layout` as a Sentinel-2-like true-colour patch.

Each scene draws its own palette, so class colours overlap and texture and context separate the
classes; sensor and atmosphere (blur, brightness, haze, colour cast, noise) come last. The image
is kept channel-first (``3×H×W`` float32) so every operation runs on contiguous planes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from lale.data.schema.aras import BUILT_UP
from lale.data.synthetic.layout import FALLOW, ORCHARD, Layout
from lale.data.synthetic.noise import F32, blur, coords, hash_quad, sigmoid, white

CHW = NDArray[np.float32]
Colour = tuple[int, int, int]

GRASS_DRY = (136, 126, 94)
GRASS_GREEN = (94, 108, 62)
SHRUB_CLUMP = (74, 74, 50)
TREE_CANOPY = ((30, 46, 30), (42, 60, 36), (50, 68, 42))
CROP_PALETTE = (
    (182, 162, 122),  # tan stubble
    (198, 184, 150),  # light tan
    (140, 114, 88),  # brown soil
    (104, 88, 72),  # dark ploughed
    (160, 116, 92),  # reddish soil
    (140, 100, 80),  # red-brown soil
    (88, 122, 52),  # green crop
    (112, 150, 62),  # bright green crop
    (124, 124, 82),  # olive
    (190, 172, 118),  # yellow stubble
    (160, 146, 112),  # grey-tan
)
BARREN_COLOURS = ((176, 164, 144), (158, 154, 148), (186, 178, 162), (170, 154, 130))
ROOFS = (
    (154, 104, 82),  # red tiles
    (204, 200, 190),  # white
    (160, 155, 146),  # concrete
    (84, 82, 80),  # shadow
    (92, 104, 68),  # garden
    (184, 176, 162),  # beige
)
ROOF_P = (0.24, 0.16, 0.24, 0.12, 0.10, 0.14)
PAVED = (150, 146, 138)
ASPHALT = (96, 96, 102)
ROAD = (170, 166, 158)
WATER_DEEP = ((10, 18, 32), (14, 24, 36), (8, 12, 20))
WATER_SHALLOW = ((40, 58, 66), (52, 66, 58), (36, 52, 70))
SAND = (198, 186, 160)
HAZE = (178, 188, 208)
KNEE = np.float32(185.0)  # start of the highlight shoulder (8-bit value)


def _col(rng: np.random.Generator, rgb: Colour, spread: float = 0.06) -> NDArray[np.float32]:
    """A palette colour (shape 3) with a per-scene brightness and hue jitter."""
    c = np.asarray(rgb, np.float64) * rng.uniform(1 - spread, 1 + spread)
    return (c * rng.normal(1.0, spread / 2, 3)).astype(np.float32)


def _paint(plane: NDArray[np.float32], colour: NDArray[np.float32]) -> CHW:
    """``colour ⊗ plane``: a ``3×…`` array, the scalar ``plane`` times each channel."""
    return colour.reshape((3,) + (1,) * plane.ndim) * plane[None]


def _mix(flat: CHW, idx: NDArray[np.intp], target: CHW, alpha: F32) -> None:
    """``flat[:, idx] += (target - flat[:, idx]) * alpha`` (``target`` may broadcast)."""
    cur = flat[:, idx]
    flat[:, idx] = cur + (target - cur) * alpha[None]


def render(layout: Layout, rng: np.random.Generator) -> NDArray[np.uint8]:
    """True-colour ``H×W×3`` uint8 image of ``layout``."""
    s = layout.classes.shape[0]
    g1 = white(rng, s)
    g2 = white(rng, s, smooth=1)
    g3 = white(rng, s)
    mid = np.ascontiguousarray(layout.detail[::-1, ::-1])

    # Natural ground as a weighted sum of four colours: grass (green ↔ dry, smooth), dark shrub
    # clumps speckled by the shrub density, and grainy tree canopy by the tree density.
    green, dry = _col(rng, GRASS_GREEN), _col(rng, GRASS_DRY)
    t = np.clip(rng.uniform(0.15, 1.0) + 0.25 * layout.greenness, 0.0, 1.0)
    clump = sigmoid(5.0 * (2.4 * layout.shrub_density - 1.45 + 0.5 * g3 + 0.3 * g2)) * 0.85
    canopy = sigmoid(6.0 * (2.6 * layout.tree_density - 1.5 + 0.7 * g2))
    grain = 1.0 + 0.16 * g1 + 0.14 * g2 - 0.25 * (g1 < -1.3)
    open_ground = 1.0 - canopy
    w_grass = open_ground * (1.0 - clump) * (1.0 + 0.05 * mid + 0.02 * g2)
    shrub = _col(rng, SHRUB_CLUMP)
    tree = _col(rng, TREE_CANOPY[int(rng.integers(len(TREE_CANOPY)))], 0.08)
    planes = (w_grass * t, open_ground * clump * (1.0 + 0.12 * g1), canopy * grain)
    img = np.empty((3, s, s), np.float32)
    for c in range(3):  # plane by plane: 2-D temporaries stay in cache
        np.multiply(w_grass, green[c], out=img[c])
        for plane, colour in zip(planes, (dry - green, shrub, tree), strict=True):
            img[c] += plane * colour[c]

    flat = img.reshape(3, -1)
    # Bare ground: pale tan or grey, mottled, fading into the vegetation at its edges.
    bare = layout.bareness.ravel()
    bi = np.flatnonzero(bare > 0.02)
    if bi.size:
        b1 = _col(rng, BARREN_COLOURS[int(rng.integers(4))])
        b2 = _col(rng, BARREN_COLOURS[int(rng.integers(4))])
        m = np.clip(0.5 + 0.4 * mid.ravel()[bi], 0.0, 1.0)
        grain = 1.0 + 0.06 * g1.ravel()[bi] + 0.06 * g2.ravel()[bi]
        bc = _paint(grain, b1) + _paint(m, b2 - b1)
        veg = 0.45 * np.clip(g3.ravel()[bi] - 0.6, 0.0, 1.0)  # sparse bushes on the rock
        _mix(flat, bi, bc, bare[bi] * (1.0 - veg))

    _crops(layout, rng, flat, g1.ravel(), mid.ravel())
    _settlements(layout, rng, flat)
    road = layout.road.ravel()
    ri = np.flatnonzero(road > 0)
    _mix(flat, ri, _col(rng, ROAD, 0.1)[:, None], road[ri] * 0.7)
    shore = layout.shore.ravel()
    si = np.flatnonzero(shore > 0)
    _mix(flat, si, _col(rng, SAND)[:, None], shore[si])

    # Relief shading of the land (morning sun from the south-east).
    gy, gx = np.gradient(layout.elevation)
    az = rng.uniform(2.0, 2.8)
    shade = 1.0 + 14.0 * layout.relief * (gx * math.cos(az) + gy * math.sin(az))
    img *= np.clip(shade, 0.6, 1.4)[None]

    # Water after shading: flat, dark, lighter and greener in the shallows.
    cover = layout.water_cover.ravel()
    wi = np.flatnonzero(cover > 0)
    if wi.size:
        k = int(rng.integers(3))
        deep, shallow = _col(rng, WATER_DEEP[k], 0.15), _col(rng, WATER_SHALLOW[k], 0.15)
        depth = np.clip(layout.water_depth.ravel()[wi] + 0.08 * mid.ravel()[wi], 0.0, 1.0)
        wc = _paint(1.0 + 0.015 * g2.ravel()[wi], shallow) + _paint(depth, deep - shallow)
        _mix(flat, wi, wc, cover[wi])

    yy, xx = coords(s)
    a = rng.uniform(0, 2 * math.pi)
    ramp = ((xx - s / 2) * math.cos(a) + (yy - s / 2) * math.sin(a)) * (2.0 / s)
    return _sensor(rng, img, ramp + 0.3 * layout.greenness.T)


def _crops(layout: Layout, rng: np.random.Generator, flat: CHW, g1: F32, mid: F32) -> None:
    """Parcel colours, row striping, orchards and fallow fields; modifies ``flat`` in place."""
    kind = layout.parcel_kind.ravel()
    ci = np.flatnonzero(kind)
    if ci.size == 0:
        return
    pid = layout.parcel.ravel()[ci]
    n = int(rng.integers(4, len(CROP_PALETTE) + 1))
    pal = np.stack([_col(rng, CROP_PALETTE[i]) for i in rng.permutation(len(CROP_PALETTE))[:n]])
    h1, h2, h3, h4 = hash_quad(pid, 1)
    h5, h6, h7, h8 = hash_quad(pid, 2)
    col = pal[(h1 * n).astype(np.intp)].T
    shade = 0.88 + 0.24 * h2 + 0.035 * mid[ci] + 0.025 * g1[ci]

    # Row / tillage striping: per parcel a direction (along or across the strip), period, depth.
    yy, xx = coords(layout.classes.shape[0])
    y, x = yy.ravel()[ci], xx.ravel()[ci]
    ang = layout.parcel_angle.ravel()[ci] + 0.3 * (h4 - 0.5)
    ang = ang + (h3 < 0.3) * np.float32(math.pi / 2)
    period = 2.2 + 3.5 * h5
    amp = np.clip(0.16 * h6 - 0.04, 0.0, None) * rng.uniform(0.5, 1.2)
    shade *= 1.0 + amp * np.sin((x * np.cos(ang) + y * np.sin(ang)) * (2 * math.pi / period))
    col = col * shade[None]

    k = kind[ci]
    orch = np.flatnonzero(k == ORCHARD)
    if orch.size:  # olive / fruit orchards: dark tree dots on a regular grid over the soil
        a, p = ang[orch], 2.4 + h7[orch]
        u = x[orch] * np.cos(a) + y[orch] * np.sin(a)
        v = -x[orch] * np.sin(a) + y[orch] * np.cos(a)
        dots = np.clip(np.cos(2 * math.pi * u / p) + np.cos(2 * math.pi * v / p) - 0.4, 0, 1)
        tree = np.asarray(TREE_CANOPY[2], np.float32)[:, None]
        col[:, orch] += (tree - col[:, orch]) * (0.8 * dots)[None]
    fallow = np.flatnonzero(k == FALLOW)
    col[:, fallow] = flat[:, ci[fallow]] * (1.0 + 0.1 * h8[fallow])[None]
    flat[:, ci] = col


def _settlements(layout: Layout, rng: np.random.Generator, flat: CHW) -> None:
    """Houses (red, white, concrete roofs, shadows, gardens) on paved ground, then streets."""
    urban = layout.urban.ravel()
    ui = np.flatnonzero(urban > 0)
    if ui.size == 0:
        return
    built = (layout.classes.ravel()[ui] == BUILT_UP).astype(np.float32)
    _mix(flat, ui, _col(rng, PAVED)[:, None], 0.55 * built)
    # One roof per building lot; neighbourhoods (the mottling field) shift the roof mix.
    lot_id = layout.lot.ravel()[ui]
    salt = int(rng.integers(1 << 30))
    p = np.asarray(ROOF_P) * rng.uniform(0.5, 1.5, len(ROOF_P))
    cum = np.cumsum(p / p.sum())[:-1]
    r1, r2, r3, _ = hash_quad(lot_id, salt)
    pick = np.clip(r1 + 0.12 * layout.detail.ravel()[ui], 0.0, 0.999)
    roof_kind = np.searchsorted(cum, pick)
    roofs = np.stack([_col(rng, r, 0.08) for r in ROOFS], axis=1)[:, roof_kind]
    roofs *= (0.88 + 0.24 * r2)[None]
    house = (r3 < urban[ui]).astype(np.float32)
    _mix(flat, ui, roofs, house)
    _mix(flat, ui, _col(rng, ASPHALT)[:, None], layout.street.ravel()[ui])


def _sensor(rng: np.random.Generator, img: CHW, haze_field: F32) -> NDArray[np.uint8]:
    """Point-spread blur, illumination, haze, colour cast and noise; ``H×W×3`` uint8."""
    mean = img.reshape(3, -1)[:, ::7].mean(axis=1)
    contrast = rng.uniform(0.8, 1.25)
    gain = rng.uniform(0.8, 1.2) * rng.normal(1.0, 0.03, 3)
    scale = (contrast * gain).astype(np.float32)
    offset = ((1.0 - contrast) * mean * gain).astype(np.float32)
    level = rng.uniform(0.0, 0.08) if rng.random() < 0.85 else rng.uniform(0.08, 0.25)
    haze = np.clip(level * (1.0 + 0.5 * haze_field), 0.0, 0.5).astype(np.float32)
    clear = 1.0 - haze
    haze_colour = _col(rng, HAZE, 0.05)
    sigma = rng.uniform(0.8, 3.0)
    noise = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape)
    out = np.empty((*img.shape[1:], 3), np.uint8)
    for c in range(3):  # plane by plane: 2-D temporaries stay in cache
        ch = img[c]
        psf = blur(ch)
        ch *= np.float32(0.65 * scale[c])
        ch += psf * np.float32(0.35 * scale[c])
        ch += offset[c]
        ch *= clear
        ch += haze * haze_colour[c]
        n = noise[c].astype(np.float32)
        n *= np.float32(sigma / 73.9)  # uniform noise with standard deviation sigma
        ch += n
        ch += np.float32(0.5 - 127.5 * sigma / 73.9)  # centre the noise; + 0.5 rounds the cast
        bright = np.maximum(ch - KNEE, 0.0)  # soft shoulder: bright ground saturates gently
        ch -= bright * np.float32(0.45)
        np.clip(ch, 0.0, 255.0, out=ch)
        out[..., c] = ch
    return out
