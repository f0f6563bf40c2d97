"""``lale benchmark``: several models (or one model's ablation variants) × protocols × seeds,
one recipe and one budget; tested along the budget, profiled, compared with statistics, reported.

:func:`run_benchmark` trains what is missing (:mod:`~lale.benchmark.runner`, with learning-rate
tuning in :mod:`~lale.benchmark.tuning`), gathers the scores, curves and profiles
(:mod:`~lale.benchmark.results`), compares them (:mod:`~lale.benchmark.claims`) and writes
``results.json``, ``results.csv``, ``report.md`` and the figures (:mod:`~lale.benchmark.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from lale.benchmark.ablations import ABLATIONS, ablation_entries
from lale.benchmark.claims import (
    ablation_verdicts,
    bn_effect,
    claim_line,
    claims,
    pareto,
    protocol_changes,
)
from lale.benchmark.plan import (
    DEFAULT_BN_STATS,
    BenchmarkPlan,
    Budget,
    Entry,
    Protocol,
    Tuning,
    parse_models,
)
from lale.benchmark.presets import PRESETS, Preset, ensure_synthetic
from lale.benchmark.runner import BenchmarkError, run_state, train_runs
from lale.benchmark.statistics import (
    PAIRED,
    TESTS,
    WELCH,
    Gap,
    majority_f1,
    mean_std,
    paired_gap,
    welch_gap,
)

__all__ = [
    "ABLATIONS",
    "DEFAULT_BN_STATS",
    "PAIRED",
    "PRESETS",
    "WELCH",
    "BenchmarkError",
    "BenchmarkPlan",
    "Budget",
    "Entry",
    "Gap",
    "Preset",
    "Protocol",
    "Tuning",
    "ablation_entries",
    "claim_line",
    "ensure_synthetic",
    "mean_std",
    "paired_gap",
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
    """Train what is missing, then test, profile, compare and report the plan into ``plan.out``.

    Returns:
        The content of ``results.json``.

    Raises:
        BenchmarkError: ``plan.out`` holds runs of another data, budget or recipe.
    """
    from lale.benchmark.report import write_outputs
    from lale.benchmark.results import (
        collect_rows,
        load_per_image,
        profile_entries,
        published_points,
        run_costs,
    )

    counts = train_runs(plan, progress=progress, console=console, say=say)
    tuning = counts.pop("tuning")
    lrs = None if tuning is None else {k: v["chosen"] for k, v in tuning["models"].items()}
    by_protocol = {p.key: collect_rows(plan, p, lrs) for p in plan.protocols()}
    headline = plan.headline
    rows = by_protocol[headline.key]
    say(f"profiling {len(rows)} models")
    profile = profile_entries(plan, rows)
    costs = ("params", "storage_bytes", "gmacs", "train_gmacs_per_image", "throughput")
    for protocol_rows in by_protocol.values():
        for row, profiled in zip(protocol_rows, rows, strict=True):
            row.update({k: profiled[k] for k in (*costs, "throughput_gpu_bf16")})
    majority = majority_f1(rows[0]["support"])
    published = published_points()
    protocols, claimed = [], {}
    for p in plan.protocols():
        protocol_rows = by_protocol[p.key]
        per_image = {r["model"]: load_per_image(r) for r in protocol_rows}
        found = (
            []
            if plan.ablation
            else claims(
                protocol_rows,
                plan.lale,
                majority=majority,
                protocol=p.describe(),
                test=plan.test,
                resamples=plan.bootstrap,
                gap_size=plan.power_gap,
                per_image={k: v for k, v in per_image.items() if v is not None},
                published=published,
            )
        )
        claimed[p.describe()] = found
        protocols.append(
            {
                "key": p.key,
                "description": p.describe(),
                "lr": p.lr,
                "bn_stats": p.bn_stats,
                "models": protocol_rows,
                "claims": found,
                "pareto": pareto(protocol_rows, majority),
            }
        )
    results: dict[str, Any] = {
        "plan": {
            **plan.identity(),
            "models": [e.label for e in plan.entries],
            "seeds": list(plan.seeds),
            "ablation": plan.ablation,
            "protocols": [p.key for p in plan.protocols()],
            "headline": headline.key,
            "bootstrap": plan.bootstrap,
            "power_gap": plan.power_gap,
            "bn_crops": plan.recipe.bn_crops,
        },
        "runs": counts,
        "test": TESTS[plan.test],
        "majority_f1": majority,
        "headline": headline.describe(),
        "models": rows,
        "claims": claimed[headline.describe()],
        "pareto": pareto(rows, majority),
        "protocols": protocols,
        "protocol_changes": protocol_changes(claimed),
        "bn_effect": bn_effect(by_protocol[plan.protocols()[0].key]),
        "tuning": tuning,
        "costs": run_costs(plan, rows, tuning),
        "verdicts": ablation_verdicts(rows, plan.test) if plan.ablation else [],
        "profile": profile,
    }
    write_outputs(plan, results)
    return results
