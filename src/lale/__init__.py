"""lale: the LALE land-cover segmentation networks and the toolkit around them.

>>> import lale
>>> model = lale.create_model("lale_t", num_classes=7, in_channels=3)

The model names are loaded on first use, so that ``import lale`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lale.models import UnknownModelError, create_model, list_models

__version__ = "0.1.0"
__all__ = ["UnknownModelError", "__version__", "create_model", "list_models"]

_FROM_MODELS = frozenset({"UnknownModelError", "create_model", "list_models"})


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:
        value = getattr(importlib.import_module("lale.models"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_MODELS})
