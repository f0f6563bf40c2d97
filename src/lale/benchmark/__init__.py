"""``lale benchmark``: several models (or one model's ablation variants) × seeds, one recipe and
one budget; tested, profiled, compared with statistics, and reported.

:func:`run_benchmark` trains what is missing (:mod:`~lale.benchmark.runner`), gathers the scores
and profiles (:mod:`~lale.benchmark.results`) and writes ``results.json``, ``results.csv``,
``report.md`` and the figures (:mod:`~lale.benchmark.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from lale.benchmark.plan import (
    ABLATIONS,
    BenchmarkPlan,
    Budget,
    Entry,
    ablation_entries,
    parse_models,
)
from lale.benchmark.presets import PRESETS, Preset, ensure_synthetic
from lale.benchmark.results import ablation_verdicts, claim_line, claims, collect_rows
from lale.benchmark.runner import BenchmarkError, run_state, train_runs
from lale.benchmark.statistics import WELCH, Gap, mean_std, welch_gap

__all__ = [
    "ABLATIONS",
    "PRESETS",
    "WELCH",
    "BenchmarkError",
    "BenchmarkPlan",
    "Budget",
    "Entry",
    "Gap",
    "Preset",
    "ablation_entries",
    "claim_line",
    "ensure_synthetic",
    "mean_std",
    "parse_models",
    "run_benchmark",
    "run_state",
    "welch_gap",
]


def run_benchmark(
    plan: BenchmarkPlan,
    *,
    progress: bool = True,
    console: Console | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train what is missing, then test, profile and report the whole plan into ``plan.out``.

    Returns:
        The content of ``results.json``.

    Raises:
        BenchmarkError: ``plan.out`` holds runs of another data, budget or recipe.
    """
    from lale.benchmark.report import write_outputs
    from lale.benchmark.results import profile_entries

    counts = train_runs(plan, progress=progress, console=console, say=say)
    rows = collect_rows(plan)
    say(f"profiling {len(rows)} models")
    profile = profile_entries(plan, rows)
    results: dict[str, Any] = {
        "plan": {
            **plan.identity(),
            "models": [e.label for e in plan.entries],
            "seeds": list(plan.seeds),
            "ablation": plan.ablation,
        },
        "runs": counts,
        "test": WELCH,
        "models": rows,
        "claims": [] if plan.ablation else claims(rows, plan.lale),
        "verdicts": ablation_verdicts(rows) if plan.ablation else [],
        "profile": profile,
    }
    write_outputs(plan, results)
    return results
