"""Preparing an ARAS400k-layout dataset from Sentinel-2 GeoTIFF tiles and ESA WorldCover maps.

- :mod:`lale.data.prepare.options` — :class:`PrepareOptions` and the parsers of its CLI values;
- :mod:`lale.data.prepare.build` — :func:`prepare_dataset`: inputs checked, tiles cut, patches
  split, ``prepare.json`` written last (resumable);
- :mod:`lale.data.prepare.cut` — cutting one tile into checked, staged patches;
- :mod:`lale.data.prepare.summary` — what a run did: counts, drops, class pixels, inputs;
- :mod:`lale.data.prepare.splits` — the spatially blocked train / val / test split;
- :mod:`lale.data.prepare.worldcover` — ESA WorldCover codes and their ARAS400k classes.

Above :mod:`lale.data.io` and :mod:`lale.data.schema`. The main names are importable from here;
their modules load on first use, so that the split rule (used by :mod:`lale.data.synthetic`
too) does not pull in rasterio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lale.errors import DataError

if TYPE_CHECKING:
    from lale.data.io.rasters import PrepareError
    from lale.data.prepare.build import expand_inputs, prepare_dataset
    from lale.data.prepare.options import PrepareOptions, parse_offset, parse_split
    from lale.data.prepare.splits import SPLITS, assign_splits
    from lale.data.prepare.summary import DROP_REASONS, PrepareSummary, class_table, summary_table
    from lale.data.prepare.worldcover import WORLDCOVER_TO_CLASS, remap_worldcover

__all__ = [
    "DROP_REASONS",
    "SPLITS",
    "WORLDCOVER_TO_CLASS",
    "DataError",
    "PrepareError",
    "PrepareOptions",
    "PrepareSummary",
    "assign_splits",
    "class_table",
    "expand_inputs",
    "parse_offset",
    "parse_split",
    "prepare_dataset",
    "remap_worldcover",
    "summary_table",
]

_HOME = {
    "DROP_REASONS": "lale.data.prepare.summary",
    "SPLITS": "lale.data.prepare.splits",
    "WORLDCOVER_TO_CLASS": "lale.data.prepare.worldcover",
    "PrepareError": "lale.data.io.rasters",
    "PrepareOptions": "lale.data.prepare.options",
    "PrepareSummary": "lale.data.prepare.summary",
    "assign_splits": "lale.data.prepare.splits",
    "class_table": "lale.data.prepare.summary",
    "expand_inputs": "lale.data.prepare.build",
    "parse_offset": "lale.data.prepare.options",
    "parse_split": "lale.data.prepare.options",
    "prepare_dataset": "lale.data.prepare.build",
    "remap_worldcover": "lale.data.prepare.worldcover",
    "summary_table": "lale.data.prepare.summary",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
