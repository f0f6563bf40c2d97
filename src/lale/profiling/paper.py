"""The paper's published table beside lale's own counts (``lale paper``).

The published numbers live in one package data file, ``lale/models/paper.json``: every row
names the registered model that reproduces it, with its F1/IoU, params and GMACs (1×3×256²)
and the tolerance our count must meet. Ratios against the reference (``upernet``) are always
computed, once from our counts and once from the published numbers; the page's headline claims
are shown beside the computed ratios, never copied into them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from rich.table import Table

from lale.atomic import write_json_atomic
from lale.profiling.summary import ModelSummary, summarize_model

__all__ = [
    "HeadlineClaim",
    "PaperComparison",
    "PaperRow",
    "PaperTable",
    "compare_to_paper",
    "load_paper_table",
    "paper_tables",
]

Metric = Literal["params", "gmacs"]


@dataclass(frozen=True)
class PaperRow:
    """One published row: its label, the registry name that builds it, its numbers."""

    label: str
    model: str
    f1: float
    iou: float
    params_m: float
    gmacs: float
    tolerance_pct: float


@dataclass(frozen=True)
class HeadlineClaim:
    """A ratio the page states in prose, e.g. "17x fewer GMACs than UPerNet"."""

    claim: str
    model: str
    metric: Metric
    ratio: float


@dataclass(frozen=True)
class PaperTable:
    """The published table: rows, the reference model of the ratios, headline claims."""

    source: str
    input: tuple[int, ...]
    reference: str
    rows: tuple[PaperRow, ...]
    headline: tuple[HeadlineClaim, ...]

    def row(self, model: str) -> PaperRow:
        """The row built by registry name ``model``."""
        return next(r for r in self.rows if r.model == model)


def load_paper_table() -> PaperTable:
    """Read the package's ``paper.json``."""
    text = resources.files("lale.models").joinpath("paper.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return PaperTable(
        source=raw["source"],
        input=tuple(raw["input"]),
        reference=raw["reference"],
        rows=tuple(PaperRow(**row) for row in raw["rows"]),
        headline=tuple(HeadlineClaim(**claim) for claim in raw["headline"]),
    )


def _diff_pct(ours: float | None, published: float) -> float | None:
    return None if ours is None else (ours / published - 1.0) * 100.0


def _ratio(reference: float | None, value: float | None) -> float | None:
    return None if reference is None or not value else reference / value


@dataclass(frozen=True)
class ComparedRow:
    """One row of the comparison; ratios are ``reference ÷ row`` ("× fewer")."""

    label: str
    model: str
    f1: float
    iou: float
    params_m: float | None
    published_params_m: float
    params_diff_pct: float | None
    gmacs: float | None
    published_gmacs: float
    gmacs_diff_pct: float | None
    tolerance_pct: float
    within_tolerance: bool
    params_ratio: float | None
    published_params_ratio: float
    gmacs_ratio: float | None
    published_gmacs_ratio: float
    error: str | None = None


@dataclass(frozen=True)
class ComparedClaim:
    """A headline claim beside the ratio computed from our counts and from the table."""

    claim: str
    model: str
    metric: Metric
    claimed: float
    ours: float | None
    from_table: float


@dataclass(frozen=True)
class PaperComparison:
    """Everything ``lale paper`` prints."""

    source: str
    reference: str
    size: int
    rows: tuple[ComparedRow, ...]
    claims: tuple[ComparedClaim, ...]

    def row(self, model: str) -> ComparedRow:
        """The compared row of registry name ``model``."""
        return next(r for r in self.rows if r.model == model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path


def _compare_row(
    row: PaperRow, ours: ModelSummary, ref: ModelSummary, published_ref: PaperRow
) -> ComparedRow:
    params_m = None if ours.params is None else ours.params / 1e6
    gmacs = ours.gmacs
    dp, dg = _diff_pct(params_m, row.params_m), _diff_pct(gmacs, row.gmacs)
    within = dp is not None and dg is not None
    within = within and abs(dp or 0.0) <= row.tolerance_pct and abs(dg or 0.0) <= row.tolerance_pct
    return ComparedRow(
        label=row.label,
        model=row.model,
        f1=row.f1,
        iou=row.iou,
        params_m=params_m,
        published_params_m=row.params_m,
        params_diff_pct=dp,
        gmacs=gmacs,
        published_gmacs=row.gmacs,
        gmacs_diff_pct=dg,
        tolerance_pct=row.tolerance_pct,
        within_tolerance=within,
        params_ratio=_ratio(ref.params, ours.params),
        published_params_ratio=published_ref.params_m / row.params_m,
        gmacs_ratio=_ratio(ref.macs, ours.macs),
        published_gmacs_ratio=published_ref.gmacs / row.gmacs,
        error=ours.error,
    )


def compare_to_paper(table: PaperTable | None = None, size: int = 256) -> PaperComparison:
    """Count every published row's model (meta device: no weights, no forward on data)."""
    table = load_paper_table() if table is None else table
    summaries = {row.model: summarize_model(row.model, size) for row in table.rows}
    if table.reference not in summaries:
        summaries[table.reference] = summarize_model(table.reference, size)
    ref, published_ref = summaries[table.reference], table.row(table.reference)
    rows = tuple(_compare_row(r, summaries[r.model], ref, published_ref) for r in table.rows)
    claims = []
    for claim in table.headline:
        compared = next(r for r in rows if r.model == claim.model)
        ours = compared.params_ratio if claim.metric == "params" else compared.gmacs_ratio
        from_table = (
            compared.published_params_ratio
            if claim.metric == "params"
            else compared.published_gmacs_ratio
        )
        claims.append(
            ComparedClaim(claim.claim, claim.model, claim.metric, claim.ratio, ours, from_table)
        )
    return PaperComparison(table.source, table.reference, size, rows, tuple(claims))


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def paper_tables(comparison: PaperComparison) -> Sequence[Table]:
    """The comparison as two rich tables: the rows, then the headline claims."""
    ref = comparison.reference
    rows = Table(title=f"{comparison.source} vs lale ({comparison.size}², ratios vs {ref})")
    for header in (
        "row",
        "model",
        "F1",
        "IoU",
        "params M (paper)",
        "params M (ours)",
        "Δ params",
        "GMACs (paper)",
        "GMACs (ours)",
        "Δ GMACs",
        "ok",
        f"params ÷ vs {ref} (ours / paper)",
        f"GMACs ÷ vs {ref} (ours / paper)",
    ):
        left = header in ("row", "model")
        rows.add_column(header, justify="left" if left else "right", no_wrap=left)
    for r in comparison.rows:
        rows.add_row(
            r.label,
            r.model,
            f"{r.f1:.2f}",
            f"{r.iou:.2f}",
            f"{r.published_params_m:.1f}",
            _num(r.params_m, ".2f"),
            _num(r.params_diff_pct, "+.1f") + " %",
            f"{r.published_gmacs:.2f}",
            _num(r.gmacs, ".2f"),
            _num(r.gmacs_diff_pct, "+.1f") + " %",
            f"±{r.tolerance_pct:g} % " + ("yes" if r.within_tolerance else "NO"),
            f"{_num(r.params_ratio, '.2f')}× / {r.published_params_ratio:.2f}×",
            f"{_num(r.gmacs_ratio, '.2f')}× / {r.published_gmacs_ratio:.2f}×",
        )
    claims = Table(title="The page's headline claims beside the computed ratios")
    for header in ("claim", "model", "claimed", "from the table", "ours"):
        claims.add_column(header, justify="left" if header in ("claim", "model") else "right")
    for c in comparison.claims:
        claims.add_row(
            c.claim, c.model, f"{c.claimed:.2f}×", f"{c.from_table:.2f}×", _num(c.ours, ".2f") + "×"
        )
    return rows, claims
