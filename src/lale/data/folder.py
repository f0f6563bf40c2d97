"""What a dataset says about itself besides its schema: its 8-bit rule and its class pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lale.data.dataset import scan_split
from lale.data.io import read_mask
from lale.data.schema import ClassSchema
from lale.errors import DataError

__all__ = ["count_class_pixels", "data_scaling"]


def data_scaling(data: Path) -> str:
    """The 8-bit rule ``lale prepare`` recorded in ``DATA/prepare.json`` (else ``"truecolor"``)."""
    path = data / "prepare.json"
    if not path.is_file():
        return "truecolor"
    try:
        options = json.loads(path.read_text(encoding="utf-8")).get("options", {})
    except (OSError, ValueError, AttributeError) as err:
        raise DataError(path, f"unreadable ({err})") from None
    return str(options.get("scaling", "truecolor"))


def count_class_pixels(data: Path, schema: ClassSchema, split: str = "train") -> list[int]:
    """Pixels of each class over a split's masks (ignore pixels excluded)."""
    counts = np.zeros(schema.num_classes, np.int64)
    for pair in scan_split(data, split):
        labels = read_mask(pair.mask, schema).labels
        counts += np.bincount(labels[labels < schema.num_classes], minlength=schema.num_classes)
    return [int(c) for c in counts]
