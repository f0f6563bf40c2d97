"""What a preparation run did: counts per split, drops per reason, class pixels, inputs.

:class:`PrepareSummary` is filled by :func:`lale.data.prepare.prepare_dataset`, saved as
``OUT/prepare.json`` and shown as rich tables by :func:`summary_table` and :func:`class_table`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from rich.markup import escape
from rich.table import Table

from lale.data.io.rasters import RasterInfo
from lale.data.prepare.options import PrepareOptions
from lale.data.prepare.splits import SPLITS
from lale.data.prepare.worldcover import WORLDCOVER_TO_CLASS
from lale.data.schema.aras import ARAS400K

DropReason = Literal[
    "edge",
    "image_black",
    "image_nodata",
    "label_outside",
    "label_nodata",
    "label_unknown",
    "mostly_water",
]
DROP_REASONS: dict[DropReason, str] = {
    "edge": "incomplete patch at a tile's right or bottom edge",
    "image_black": "all-black imagery (every band 0 after scaling)",
    "image_nodata": "imagery no-data (nodata value, mask or NaN)",
    "label_outside": "labels outside every label raster",
    "label_nodata": "label no-data (code 0 or the raster's nodata)",
    "label_unknown": "label code not in the WorldCover table",
    "mostly_water": "more water than max_water (default 90 %)",
}
"""Why a window is not written, in the order the checks run (a window counts once)."""

SCALING_RULE = (
    "uint8: as is; other integers: reflectance = (DN + offset) / 10000; float: reflectance; "
    "then clip(rint(reflectance / 0.2 * 255), 0, 255)"
)
"""The true-colour 8-bit rule, as recorded in ``prepare.json``."""
ARAS400K_RULE = "per patch: uint8(patch / patch.max() * 255), max over all bands and pixels"
"""ARAS400k's 8-bit rule, as recorded in ``prepare.json``."""
SCALING_RULES = {"truecolor": SCALING_RULE, "aras400k": ARAS400K_RULE}


@dataclass(frozen=True)
class ImageryRecord:
    """An input tile as prepared.

    Attributes:
        info: Its raster info.
        offsets: DN offset used for each selected band.
        labels: Indices (into the label list) of the label rasters that overlap it.
        rows: Patch rows of its grid (the last may be incomplete).
        cols: Patch columns of its grid (the last may be incomplete).
    """

    info: RasterInfo
    offsets: tuple[int, ...]
    labels: tuple[int, ...]
    rows: int
    cols: int


def _zeros() -> NDArray[np.int64]:
    return np.zeros(ARAS400K.num_classes, np.int64)


@dataclass
class PrepareSummary:
    """What :func:`lale.data.prepare.prepare_dataset` did.

    Attributes:
        out: Dataset root.
        options: The options it ran with.
        imagery: The input tiles.
        labels: The label rasters.
        windows: Patch windows looked at (written + dropped).
        written: Patches written per split.
        dropped: Windows dropped per reason.
        unknown_codes: Pixel count of each label code outside the WorldCover table.
        class_pixels: Label pixels per class, per split.
    """

    out: Path
    options: PrepareOptions
    imagery: list[ImageryRecord]
    labels: list[RasterInfo]
    windows: int = 0
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    unknown_codes: Counter[int] = field(default_factory=Counter)
    class_pixels: dict[str, NDArray[np.int64]] = field(
        default_factory=lambda: {s: _zeros() for s in SPLITS}
    )

    @property
    def json_path(self) -> Path:
        """Where the summary is saved."""
        return self.out / "prepare.json"

    def class_fractions(self, split: str | None = None) -> tuple[float, ...]:
        """Share of the label pixels in each class, in one split or (``None``) in all."""
        if split is None:
            pixels = np.sum(list(self.class_pixels.values()), axis=0)
        else:
            pixels = self.class_pixels[split]
        total = max(int(pixels.sum()), 1)
        return tuple(int(p) / total for p in pixels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the content of ``prepare.json``)."""
        try:
            version = metadata.version("lale")
        except metadata.PackageNotFoundError:
            version = "unknown"
        names = ARAS400K.names
        return {
            "generator": "lale.data.prepare",
            "lale_version": version,
            "inputs": {
                "imagery": [
                    {**_info(r.info), "offsets": list(r.offsets), "grid": [r.rows, r.cols]}
                    for r in self.imagery
                ],
                "labels": [_info(info) for info in self.labels],
            },
            "options": {**asdict(self.options), "image_format": self.options.image_format},
            "scaling": SCALING_RULES[self.options.scaling],
            "remap": {str(k): names[v] for k, v in WORLDCOVER_TO_CLASS.items()},
            "windows": self.windows,
            "written": {**self.written, "total": sum(self.written.values())},
            "dropped": {**self.dropped, "total": sum(self.dropped.values())},
            "unknown_label_codes": {str(k): v for k, v in sorted(self.unknown_codes.items())},
            "classes": list(names),
            "class_pixels": {s: [int(p) for p in px] for s, px in self.class_pixels.items()},
            "class_pixel_fractions": {
                s: {n: round(f, 6) for n, f in zip(names, self.class_fractions(s), strict=True)}
                for s in SPLITS
            },
        }


def _info(info: RasterInfo) -> dict[str, Any]:
    return {**asdict(info), "path": str(info.path)}


def summary_table(summary: PrepareSummary) -> Table:
    """Patches written per split and windows dropped per reason."""
    table = Table(title=f"prepared {escape(str(summary.out))} ({summary.options.patch}² patches)")
    table.add_column("")
    table.add_column("patches", justify="right")
    table.add_column("")
    for split, n in summary.written.items():
        table.add_row(f"written: {split}", str(n), "")
    table.add_row("written", str(sum(summary.written.values())), "", end_section=True)
    for reason, n in summary.dropped.items():
        why = DROP_REASONS[reason]
        if reason == "mostly_water":
            why = f"more than {summary.options.max_water:.0%} water"
        table.add_row(f"dropped: {reason}", str(n), why)
    if summary.unknown_codes:
        codes = ", ".join(f"{k}: {v} px" for k, v in sorted(summary.unknown_codes.items()))
        table.add_row("", "", f"unknown codes {codes}")
    table.add_row("dropped", str(sum(summary.dropped.values())), "", end_section=True)
    table.add_row("windows", str(summary.windows), "")
    return table


def class_table(summary: PrepareSummary) -> Table:
    """Class pixel fractions per split."""
    table = Table(title="label pixels per class")
    table.add_column("class")
    for split, n in summary.written.items():
        table.add_column(f"{split} ({n})", justify="right")
    fractions = [summary.class_fractions(s) for s in summary.written]
    for k, name in enumerate(ARAS400K.names):
        table.add_row(name, *(f"{f[k]:.1%}" for f in fractions))
    return table
