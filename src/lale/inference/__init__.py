"""Whole-scene inference: windows, rasters, areas, export (docs/design.md#whole-scene-inference).

- :mod:`lale.inference.tiling` — window geometry, blending weights, the strip accumulator and
  the sliding-window loop;
- :mod:`lale.inference.scene` — reading inputs by windows (GeoTIFF, PNG/JPEG);
- :mod:`lale.inference.row_products` — class indices, confidence and probabilities of logits;
- :mod:`lale.inference.scene_outputs` and :mod:`lale.inference.cog` — the class map, confidence,
  probabilities (Cloud-Optimized GeoTIFFs) and preview, committed all or nothing;
- :mod:`lale.inference.vectorize` — polygons of a class map by row bands (``--vector``);
- :mod:`lale.inference.areas` — per-class pixels, percent and km² (geographic CRS handled);
- :mod:`lale.inference.predict` — backends, band selection and scaling, :func:`predict_scene`.

The main names are importable from here; submodules load on first use, so importing
``lale.inference`` (e.g. for the ONNX export) does not pull in rasterio.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AreaTable",
    "PredictOptions",
    "SceneResult",
    "TileGrid",
    "TorchBackend",
    "load_backend",
    "predict_scene",
    "slide_inference",
]

_HOME = {
    "AreaTable": "areas",
    "PredictOptions": "options",
    "SceneResult": "predict",
    "TileGrid": "tiling",
    "TorchBackend": "predict",
    "load_backend": "predict",
    "predict_scene": "predict",
    "slide_inference": "tiling",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
