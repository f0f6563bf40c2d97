"""Per-model learning rates, tuned on the validation split at a short budget.

Each value of the grid trains the model once (the plan's first seed) for a share of the budget
(:class:`~lale.benchmark.plan.Tuning`); its score is the best validation macro-F1 reached
within that share. The learning-rate schedule (ReduceLROnPlateau on validation macro-F1) does not
depend on the length of the budget, so for step and epoch budgets a tuning run at the recipe's
own learning rate is the first part of the one-recipe run of that seed: its score is read from
that run's epoch table, and it is not trained again.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lale.benchmark.plan import RUNS, BenchmarkPlan, RunSpec
from lale.errors import WorkFailedError
from lale.run_layout import METRICS_CSV

__all__ = ["best_val_f1", "choose_lrs", "reused_run"]

_F1 = "val/macro_f1"


def reused_run(plan: BenchmarkPlan, spec: RunSpec) -> Path | None:
    """The one-recipe run whose first part is the tuning run ``spec``, if there is one."""
    if spec.lr != plan.recipe.lr or plan.budget.kind == "minutes":
        return None
    full = plan._spec(
        spec.entry, spec.seed, spec.lr, plan.headline.bn_stats, RUNS, plan.budget, plan.curve
    )
    return full.run_dir


def best_val_f1(run_dir: Path, spec: RunSpec) -> float:
    """Best validation macro-F1 of ``run_dir`` within ``spec``'s budget.

    Raises:
        WorkFailedError: The run has no epoch table, or no validation within the budget.
    """
    path = run_dir / METRICS_CSV
    if not path.is_file():
        raise WorkFailedError(f"{path}: missing; the tuning run did not finish")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    budget = spec.budget
    if budget.kind == "steps":
        rows = [r for r in rows if int(r["step"]) <= budget.amount]
    elif budget.kind == "epochs":
        rows = [r for r in rows if int(r["epoch"]) < budget.amount]
    scores = [float(r[_F1]) for r in rows if r.get(_F1) not in (None, "")]
    if not scores:
        raise WorkFailedError(f"{path}: no validation macro-F1 within the tuning budget")
    return max(scores)


def choose_lrs(plan: BenchmarkPlan, runs: list[RunSpec]) -> dict[str, Any]:
    """The tuning record: per model the grid, each value's score, and the chosen value.

    Ties go to the value nearest the recipe's learning rate (in ratio), so tuning only moves a
    model off the shared recipe for a measured gain.
    """
    assert plan.tuning is not None
    models: dict[str, Any] = {}
    for entry in plan.entries:
        mine = [r for r in runs if r.entry.label == entry.label]
        scores, where = {}, {}
        for spec in mine:
            source = reused_run(plan, spec) or spec.run_dir
            scores[spec.lr] = best_val_f1(source, spec)
            where[spec.lr] = str(source)
        recipe_lr = plan.recipe.lr
        chosen = max(scores, key=lambda lr: (scores[lr], -abs(_log_ratio(lr, recipe_lr))))
        models[entry.label] = {
            "grid": sorted(scores),
            "val_f1": {f"{lr:g}": scores[lr] for lr in sorted(scores)},
            "chosen": chosen,
            "recipe_lr": recipe_lr,
            "runs": {f"{lr:g}": where[lr] for lr in sorted(scores)},
        }
    budget = plan.budget.scaled(plan.tuning.fraction)
    return {
        "budget": {"kind": budget.kind, "amount": budget.amount},
        "fraction": plan.tuning.fraction,
        "seed": plan.seeds[0],
        "bn_stats": plan.headline.bn_stats,
        "criterion": "best validation macro-F1 within the tuning budget",
        "models": models,
    }


def _log_ratio(a: float, b: float) -> float:
    import math

    return math.log(a / b)
