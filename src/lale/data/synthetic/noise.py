"""Noise fields and small vectorised helpers for the synthetic scene generator.

Everything here works on whole ``size × size`` arrays (no per-pixel Python loops); smooth fields
are random grids summed on a small working grid and upsampled bicubically once (much cheaper
than FFT noise at 256²).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

F32 = NDArray[np.float32]
U32 = NDArray[np.uint32]
_BICUBIC = Image.Resampling.BICUBIC


@lru_cache(maxsize=64)
def _cubic_matrix(n: int, m: int) -> F32:
    """``m × n`` Catmull-Rom interpolation matrix, same geometry as Pillow's bicubic resize."""
    x = (np.arange(m) + 0.5) * (n / m) - 0.5
    i0 = np.floor(x).astype(np.intp)
    t = x - i0
    w = (
        ((-0.5 * t + 1.0) * t - 0.5) * t,
        (1.5 * t - 2.5) * t * t + 1.0,
        ((-1.5 * t + 2.0) * t + 0.5) * t,
        (0.5 * t - 0.5) * t * t,
    )
    mat = np.zeros((m, n), np.float64)
    for k in range(4):
        np.add.at(mat, (np.arange(m), np.clip(i0 - 1 + k, 0, n - 1)), w[k])
    out = mat.astype(np.float32)
    out.setflags(write=False)
    return out


def upsample(grid: F32, size: int) -> F32:
    """Bicubic resize of a small square float grid to ``size × size``.

    Small targets use two tiny matrix products (below BLAS's threading threshold); large ones
    Pillow's single-threaded resize, which avoids multithreaded BLAS stalls on a busy machine.
    """
    g = np.ascontiguousarray(grid, dtype=np.float32)
    if size <= 64:
        mat = _cubic_matrix(g.shape[0], size)
        return np.asarray(mat @ g @ mat.T, dtype=np.float32)
    return np.asarray(Image.fromarray(g).resize((size, size), _BICUBIC), dtype=np.float32)


def smooth_field(
    rng: np.random.Generator, size: int, cells: int, octaves: int = 3, persistence: float = 0.5
) -> F32:
    """Fractal value noise: ``octaves`` random grids, the coarsest with ``cells`` per side.

    ``cells`` counts grid cells per 256 pixels (2.56 km) and is scaled with ``size``, so features
    keep their ground size at any patch size. Octaves double the resolution and are summed and
    standardised on a small working grid (≤ 64² at 256 px, never finer than the finest octave),
    then upsampled once: zero mean, unit standard deviation (approximately).
    """
    base = max(1, round(cells * size / 256))
    work = min(size, max(8, base * 2 ** (octaves - 1)), max(64, size // 4))
    acc = np.zeros((work, work), dtype=np.float32)
    amp = 1.0
    for k in range(octaves):
        n = min(base * 2**k, work)
        grid = rng.standard_normal((n, n), dtype=np.float32)
        acc += np.float32(amp) * (upsample(grid, work) if n != work else grid)
        amp *= persistence
    acc -= acc.mean()
    acc /= acc.std() + np.float32(1e-6)
    return upsample(acc, size) if work != size else acc


def standardise(x: F32) -> F32:
    """Zero mean, unit standard deviation (estimated on a 1/16 subsample: cheap and plenty)."""
    sub = x[::4, ::4]
    return ((x - sub.mean()) / (sub.std() + 1e-6)).astype(np.float32)


def blur(x: F32, passes: int = 1) -> F32:
    """Separable [1, 2, 1] / 4 blur over the last two axes, edges replicated, ``passes`` times."""
    out = np.asarray(x, dtype=np.float32)
    for _ in range(passes):
        for axis in (-2, -1):
            src = out if axis == -2 else np.swapaxes(out, -2, -1)
            res = src * np.float32(0.5)
            q = src * np.float32(0.25)
            res[..., 1:, :] += q[..., :-1, :]
            res[..., :-1, :] += q[..., 1:, :]
            res[..., 0, :] += q[..., 0, :]
            res[..., -1, :] += q[..., -1, :]
            out = res if axis == -2 else np.swapaxes(res, -2, -1)
    return np.ascontiguousarray(out)


def white(rng: np.random.Generator, size: int, smooth: int = 0) -> F32:
    """Per-pixel zero-mean, unit-variance (uniform) noise, optionally blurred ``smooth`` times.

    Uniform bytes rather than Gaussian draws: several times cheaper and, once blurred or used as
    texture, indistinguishable.
    """
    n = np.frombuffer(rng.bytes(size * size), np.uint8).reshape(size, size).astype(np.float32)
    n -= np.float32(127.5)
    n *= np.float32(1.0 / 73.9)
    return standardise(blur(n, smooth)) if smooth else n


def hash_u32(x: NDArray[np.integer]) -> U32:
    """Integer hash (lowbias32) of each element, for per-parcel random attributes."""
    h = np.asarray(x).astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return h


def hash_unit(x: NDArray[np.integer], salt: int) -> F32:
    """Uniform [0, 1) value per element, a deterministic function of ``(x, salt)``."""
    h = hash_u32(np.asarray(x).astype(np.uint32) ^ hash_u32(np.array(salt, dtype=np.uint32)))
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def hash_quad(x: NDArray[np.integer], salt: int) -> F32:
    """Four uniform [0, 1) values (8-bit resolution) per element, shape ``4 × x.size``.

    One hash gives four attributes: cheaper than four :func:`hash_unit` calls where 1/256 steps
    are fine (palette picks, jitters, flags).
    """
    h = hash_u32(np.asarray(x).astype(np.uint32).ravel() ^ hash_u32(np.array(salt, np.uint32)))
    q = h.view(np.uint8).reshape(-1, 4).T.astype(np.float32)
    q *= np.float32(1.0 / 256.0)
    q += np.float32(0.5 / 256.0)
    return q


def quantile(x: F32, q: float, where: NDArray[np.bool_] | None = None) -> float:
    """Approximate ``q``-quantile of ``x`` (optionally only where ``where``) on a 1/4 subsample.

    ``q >= 1`` (or nothing selected) gives ``+inf`` and ``q <= 0`` gives ``-inf``, so that
    ``x > quantile(x, 1 - f)`` selects nothing for ``f = 0`` and everything for ``f = 1``.
    """
    sub = x[::2, ::2]
    if where is not None:
        sub = sub[where[::2, ::2]]
    if q >= 1.0 or sub.size == 0:
        return float("inf")
    if q <= 0.0:
        return float("-inf")
    return float(np.quantile(sub, q))


@lru_cache(maxsize=4)
def coords(size: int) -> tuple[F32, F32]:
    """Pixel-centre coordinate grids ``(yy, xx)`` (read-only, cached per size)."""
    ax = np.arange(size, dtype=np.float32)
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


def sigmoid(x: NDArray[np.floating[Any]]) -> F32:
    """Logistic function, float32."""
    e = np.exp(-np.clip(x, -30.0, 30.0), dtype=np.float32)
    e += np.float32(1.0)
    return np.reciprocal(e, out=e)
