"""The metadata keys of the QGIS Deepness plugin, so an exported file loads there as it is.

Deepness reads ``metadata_props`` values as JSON: ``model_type`` (``"Segmentor"``),
``class_names`` (an index → name object; lale's own ``class_names`` key has that form too),
``resolution`` (cm per pixel), ``tiles_size`` (the key its documentation names) and
``tile_size`` (the key its code reads), ``tiles_overlap`` (percent of the tile) and
``standardization_mean``/``standardization_std``.

Deepness feeds a tile as ``x = (v / 255 − m) / s`` per channel, ``v`` the layer's sample. lale's
model expects ``((v + offset) / scale − mean) / std``; both are the same affine map when
``m = (mean·scale − offset) / 255`` and ``s = std·scale / 255``, which is what is written. For a
model trained on 8-bit images (scale 255, offset 0) that is lale's mean and std unchanged. Models
trained on DN or reflectance get the numbers that are right for layers of those raw samples; and
rules lale applies per window (ARAS400k's per-patch maximum, the TCI 8-bit rule from DN) are
not something Deepness can do (docs/design.md#deepness).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lale.run_config import RunConfig

__all__ = ["DEEPNESS_KEYS", "deepness_metadata", "deepness_standardization", "resolution_cm"]

DEEPNESS_KEYS = frozenset(
    {
        "model_type",
        "resolution",
        "tiles_size",
        "tile_size",
        "tiles_overlap",
        "standardization_mean",
        "standardization_std",
        "seg_thresh",
        "seg_small_segment",
    }
)
"""Deepness' own keys (besides ``class_names``, which lale writes in Deepness' form)."""

TILE = 256
OVERLAP = 64
"""``lale predict``'s default tile and overlap, handed to Deepness as its defaults."""


def deepness_standardization(config: RunConfig) -> tuple[list[float], list[float]]:
    """Deepness' ``(standardization_mean, standardization_std)`` for a run (module docs)."""
    image = config.image_spec()
    mean, std = image.normalization()
    scale, offset = float(image.scale), float(image.offset)
    m = [(float(mu) * scale - offset) / 255.0 for mu in mean]
    s = [float(sd) * scale / 255.0 for sd in std]
    return m, s


def resolution_cm(config: RunConfig) -> float | None:
    """Pixel size of the training imagery in cm, if the run's ``prepare.json`` records one.

    Known when every prepared input tile has one square pixel size in metres (a projected
    CRS); otherwise (no dataset recorded, not on this machine, degrees, mixed sizes) ``None``.
    """
    data = config.recipe.data
    if not data:
        return None
    path = Path(data) / "prepare.json"
    try:
        imagery = json.loads(path.read_text(encoding="utf-8"))["inputs"]["imagery"]
        sizes = {(float(i["resolution"][0]), float(i["resolution"][1])) for i in imagery}
        crss = {str(i["crs"]) for i in imagery}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if len(sizes) != 1 or not crss:
        return None
    ((x, y),) = sizes
    if x != y or x <= 0 or not all(_in_metres(crs) for crs in crss):
        return None
    return round(x * 100.0, 6)


def _in_metres(crs: str) -> bool:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        axes = CRS.from_user_input(crs).axis_info
    except CRSError:
        return False
    return bool(axes) and all(a.unit_name in ("metre", "meter") for a in axes[:2])


def deepness_metadata(
    config: RunConfig, tile: int = TILE, overlap: int = OVERLAP
) -> dict[str, str]:
    """Deepness' ``metadata_props`` for a run's export, values as JSON text.

    Args:
        config: The run's configuration.
        tile: Tile side Deepness should crop (``tiles_size``/``tile_size``).
        overlap: Pixels shared by neighbouring tiles, written as a percent of ``tile``.
    """
    mean, std = deepness_standardization(config)
    values: dict[str, Any] = {
        "model_type": "Segmentor",
        "tiles_size": tile,
        "tile_size": tile,
        "tiles_overlap": round(100 * overlap / tile),
        "standardization_mean": mean,
        "standardization_std": std,
    }
    if (cm := resolution_cm(config)) is not None:
        values["resolution"] = cm
    return {k: json.dumps(v) for k, v in values.items()}
