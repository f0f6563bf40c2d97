"""The frontier networks' published sizes beside lale's counts at the same input (``lale paper``).

The published figures live in one package data file, ``lale/models/frontier.json``: each row
names the registered model (and any configuration it needs, e.g. EfficientViT's ADE20K head),
the dataset's class count and input size the paper counted at, its parameters and G(MA)Cs, and
the counting convention of its source. Our counts are made at that size and class count, on the
meta device, so the two columns describe the same network on the same input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from rich.table import Table

__all__ = [
    "FrontierComparison",
    "FrontierRow",
    "FrontierTable",
    "compare_frontier",
    "frontier_table",
    "load_frontier_table",
]


@dataclass(frozen=True)
class FrontierRow:
    """One published network: where its numbers come from and what they count.

    Attributes:
        label: The name its paper uses.
        model: The registry name that builds it.
        kwargs: Configuration beyond the registry defaults (e.g. a dataset-specific head).
        source: Paper (and repository) the figures come from.
        dataset: The dataset the figures were counted for.
        classes: That dataset's class count (the classifier's width).
        input: Height and width the paper counted at.
        params_m: Published parameters, millions.
        gmacs: Published G(MA)Cs at ``input`` (see ``convention``).
        convention: How the source counts (MACs, or "FLOPs" that are MACs).
        tolerance_pct: How far our counts may be from the published ones.
        gmacs_tolerance_pct: A wider bound for the G figure where the source's counter counts
            other operations than lale's (``None``: ``tolerance_pct``); ``gmacs_note`` says why.
        gmacs_note: Why the G figures differ, where they differ by more than a few percent.
    """

    label: str
    model: str
    source: str
    dataset: str
    classes: int
    input: tuple[int, int]
    params_m: float
    gmacs: float
    convention: str
    tolerance_pct: float
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    gmacs_tolerance_pct: float | None = None
    gmacs_note: str = ""

    @property
    def gmacs_tolerance(self) -> float:
        """The bound on the G difference, in percent."""
        return self.tolerance_pct if self.gmacs_tolerance_pct is None else self.gmacs_tolerance_pct


@dataclass(frozen=True)
class FrontierTable:
    """The published figures of the frontier networks."""

    title: str
    rows: tuple[FrontierRow, ...]


def load_frontier_table() -> FrontierTable:
    """Read the package's ``frontier.json``."""
    text = resources.files("lale.models").joinpath("frontier.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    rows = tuple(FrontierRow(**{**r, "input": tuple(r["input"])}) for r in raw["rows"])
    return FrontierTable(title=raw["title"], rows=rows)


@dataclass(frozen=True)
class FrontierCount:
    """One row's published figures beside ours at the same input and class count."""

    row: FrontierRow
    params_m: float | None
    gmacs: float | None
    error: str | None = None

    @property
    def params_diff_pct(self) -> float | None:
        """Our parameters against the published, in percent."""
        return None if self.params_m is None else (self.params_m / self.row.params_m - 1) * 100

    @property
    def gmacs_diff_pct(self) -> float | None:
        """Our GMACs against the published, in percent."""
        return None if self.gmacs is None else (self.gmacs / self.row.gmacs - 1) * 100

    @property
    def within_tolerance(self) -> bool:
        """Both counts within the row's tolerances."""
        params, gmacs = self.params_diff_pct, self.gmacs_diff_pct
        return (
            params is not None
            and gmacs is not None
            and abs(params) <= self.row.tolerance_pct
            and abs(gmacs) <= self.row.gmacs_tolerance
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            **asdict(self.row),
            "published_params_m": self.row.params_m,
            "published_gmacs": self.row.gmacs,
            "params_m": self.params_m,
            "gmacs": self.gmacs,
            "params_diff_pct": self.params_diff_pct,
            "gmacs_diff_pct": self.gmacs_diff_pct,
            "within_tolerance": self.within_tolerance,
            "error": self.error,
        }


@dataclass(frozen=True)
class FrontierComparison:
    """Every frontier row counted."""

    title: str
    rows: tuple[FrontierCount, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"title": self.title, "rows": [r.to_dict() for r in self.rows]}


def _count(row: FrontierRow) -> FrontierCount:
    from lale.models import create_model
    from lale.profiling.counting import count_macs, count_parameters, meta_weights

    try:
        with meta_weights():
            model = create_model(row.model, num_classes=row.classes, in_channels=3, **row.kwargs)
        params = count_parameters(model)
        macs = count_macs(model, row.input, 3)
    except (ImportError, RuntimeError, ValueError) as err:
        return FrontierCount(row, None, None, f"{type(err).__name__}: {err}")
    return FrontierCount(row, params / 1e6, macs / 1e9)


def compare_frontier(table: FrontierTable | None = None) -> FrontierComparison:
    """Count every frontier row at its paper's input size and class count (meta device)."""
    table = load_frontier_table() if table is None else table
    return FrontierComparison(table.title, tuple(_count(r) for r in table.rows))


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _bounds(row: FrontierRow) -> str:
    if row.gmacs_tolerance == row.tolerance_pct:
        return f"±{row.tolerance_pct:g} %"
    return f"±{row.tolerance_pct:g} % / G ±{row.gmacs_tolerance:g} %"


def frontier_table(comparison: FrontierComparison) -> Table:
    """The comparison as a rich table."""
    table = Table(title=comparison.title)
    for header in (
        "network",
        "model",
        "counted at",
        "params M (paper)",
        "params M (ours)",
        "Δ params",
        "G (paper)",
        "GMACs (ours)",
        "Δ",
        "paper counts",
        "ok",
    ):
        left = header in ("network", "model", "counted at", "paper counts")
        table.add_column(header, justify="left" if left else "right")
    for c in comparison.rows:
        r = c.row
        h, w = r.input
        table.add_row(
            r.label,
            r.model,
            f"{r.dataset}, {r.classes} cls, {h}×{w}",
            f"{r.params_m:g}",
            _num(c.params_m, ".3f"),
            _num(c.params_diff_pct, "+.1f") + " %",
            f"{r.gmacs:g}",
            _num(c.gmacs, ".3f"),
            _num(c.gmacs_diff_pct, "+.1f") + " %",
            r.convention,
            _bounds(r) + (" yes" if c.within_tolerance else " NO"),
        )
    return table
