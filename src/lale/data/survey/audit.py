"""Checks of a dataset's masks against a class schema before training, and unknown-pixel reports.

:func:`audit_labels` reads a spread of a split's masks and fails when too few pixels carry a
class of the schema (the usual cause: masks drawn in another scheme and ``--schema`` forgotten),
naming the schema and the most common colours it does not know. :func:`unknown_summary` and
:func:`unknown_record` turn a split's :class:`~lale.data.dataset.UnknownPixels` into the console
line and the JSON that ``lale train`` and ``lale evaluate`` show.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lale.data.dataset import UnknownPixels
from lale.data.io import read_mask
from lale.data.io.layout import Pair
from lale.data.schema import ClassSchema
from lale.errors import DataError

__all__ = ["LabelAudit", "audit_labels", "unknown_record", "unknown_summary"]

SAMPLE = 200
"""Masks read per split by :func:`audit_labels` (evenly spread; all of them in smaller splits)."""
_SHOWN = 5  # files or colours listed on the console


@dataclass
class LabelAudit:
    """Labelled and unknown pixels over the masks read.

    Attributes:
        files: Mask files read.
        labelled: Pixels of a class of the schema.
        unknown: Pixels of a colour or value that is not in the schema.
        colours: Unknown colour or value (as text) → pixels.
    """

    files: int = 0
    labelled: int = 0
    unknown: int = 0
    colours: Counter[str] = field(default_factory=Counter)

    @property
    def unknown_fraction(self) -> float:
        """Unknown pixels among the labelled and unknown ones (0 when there are none)."""
        seen = self.labelled + self.unknown
        return self.unknown / seen if seen else 0.0

    def top(self, n: int = _SHOWN) -> str:
        """The ``n`` most common unknown colours or values with their pixel counts, as text."""
        return ", ".join(f"{c} {k} px" for c, k in self.colours.most_common(n)) or "none"


def _spread(pairs: Sequence[Pair], limit: int) -> list[Pair]:
    if len(pairs) <= limit:
        return list(pairs)
    return [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, limit).round()]


def audit_labels(
    pairs: Sequence[Pair],
    schema: ClassSchema,
    where: str,
    max_unknown: float = 0.5,
    limit: int = SAMPLE,
) -> LabelAudit:
    """Read up to ``limit`` masks of a split and check that the schema labels them.

    Args:
        pairs: The split's samples.
        schema: The class schema training would use.
        where: The split folder, for messages.
        max_unknown: Largest tolerated fraction of unknown pixels (among labelled + unknown).
        limit: Masks to read, evenly spread over the split.

    Raises:
        DataError: No mask pixel has a class of the schema, or more than ``max_unknown`` of
            them have unknown colours; the message names the schema, the most common unknown
            colours and the options that fix it.
    """
    audit = LabelAudit()
    for pair in _spread(pairs, limit):
        mask = read_mask(pair.mask, schema)
        audit.files += 1
        audit.labelled += int(np.count_nonzero(mask.labels < schema.num_classes))
        audit.unknown += mask.unknown
        audit.colours.update(dict(mask.top))
    problem = None
    if audit.labelled == 0:
        problem = f"no pixel of {audit.files} masks read has a class of schema {schema.name!r}"
    elif audit.unknown_fraction > max_unknown:
        problem = (
            f"{audit.unknown_fraction:.0%} of the mask pixels read ({audit.files} masks) have "
            f"colours/values not in schema {schema.name!r} (more than --max-unknown "
            f"{max_unknown:.0%})"
        )
    if problem is not None:
        raise DataError(
            where,
            f"{problem}; most common unknown colours: {audit.top()}. Give the masks' schema "
            "with --schema FILE (lale schema init DATA writes one from the masks)",
        )
    return audit


def unknown_summary(split: str, report: UnknownPixels) -> str:
    """One line for the console: unknown pixels of a split, the worst files, example colours."""
    items = sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = []
    for name, pixels in items[:_SHOWN]:
        eg = report.examples.get(name, ())
        shown.append(f"{name} {pixels} px" + (f" ({' '.join(eg)})" if eg else ""))
    more = f", … and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return (
        f"unknown mask colours in {split}: {report.total} px in {len(items)} of "
        f"{report.checked} files, labelled {report.ignore_index} and ignored: "
        + ", ".join(shown)
        + more
    )


def unknown_record(report: UnknownPixels) -> dict[str, Any]:
    """JSON-ready form of a split's report: totals and each file's pixels and examples."""
    items = sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "pixels": report.total,
        "files_checked": report.checked,
        "files_in_split": report.total_files,
        "ignore_index": report.ignore_index,
        "files": {
            name: {"pixels": pixels, "examples": list(report.examples.get(name, ()))}
            for name, pixels in items
        },
    }
