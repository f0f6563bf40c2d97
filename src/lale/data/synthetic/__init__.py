"""Procedurally generated Sentinel-2-like land-cover scenes in the ARAS400k layout.

The embedded default dataset: no real data is downloaded at run time, so scenes are drawn from
noise fields — forest, shrubland, grassland, field mosaics, settlements with street grids, rivers,
lakes and bare ground — rendered as 10 m true colour and labelled like ESA WorldCover (blobby, not
pixel-exact; docs/design.md#synthetic-data).

Public API: :func:`generate_scene`, :func:`write_dataset`, :func:`save_mosaic`.
"""

from lale.data.synthetic.dataset import (
    SPLITS,
    SplitSummary,
    SyntheticSummary,
    patch_name,
    patch_rng,
    save_mosaic,
    write_dataset,
)
from lale.data.synthetic.scene import generate_scene

__all__ = [
    "SPLITS",
    "SplitSummary",
    "SyntheticSummary",
    "generate_scene",
    "patch_name",
    "patch_rng",
    "save_mosaic",
    "write_dataset",
]
