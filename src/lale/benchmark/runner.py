"""Train, test and profile every (model, seed) of a plan; resumable and incremental.

A run whose ``test_metrics.json`` exists is finished and skipped; one with a resumable checkpoint
continues where it stopped (``lale train --resume``); one killed before its first checkpoint
starts again. ``OUT/plan.json`` records the data, budget and recipe, and a later call with
other ones is refused: the runs of one folder must stay comparable.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from lale.atomic import write_json_atomic
from lale.benchmark.plan import BenchmarkPlan, Budget, RunSpec
from lale.data.dataset import scan_split
from lale.errors import WorkFailedError
from lale.run_layout import CHECKPOINT, CONFIG, TEST_METRICS
from lale.training.curve import CurveSpec

__all__ = ["PLAN", "RUN_RECORD", "TUNING", "BenchmarkError", "run_state", "train_runs"]

PLAN = "plan.json"
TUNING = "tuning.json"
"""In ``OUT``: the learning-rate grid, each value's validation macro-F1, the choice."""
RUN_RECORD = "benchmark_run.json"
"""Written into each run directory at the end of training: steps, seconds, pixels seen."""
Say = Callable[[str], None]


class BenchmarkError(WorkFailedError):
    """The benchmark cannot run as asked; the message says why and what to do."""


def run_state(run_dir: Path) -> str:
    """``"done"``, ``"resume"`` (checkpoint kept), ``"restart"`` (killed early) or ``"new"``."""
    if (run_dir / TEST_METRICS).is_file():
        return "done"
    if (run_dir / CONFIG).is_file():
        return "resume" if (run_dir / CHECKPOINT).is_file() else "restart"
    return "new"


def check_plan(plan: BenchmarkPlan) -> None:
    """Record the plan's data, budget and recipe in ``OUT/plan.json``, or refuse other ones."""
    path = plan.out / PLAN
    identity = json.loads(json.dumps(plan.identity()))
    if path.is_file():
        kept = json.loads(path.read_text())
        differ = [k for k in identity if kept.get(k) != identity[k]]
        if differ:
            raise BenchmarkError(
                f"{plan.out} holds a benchmark with another {', '.join(differ)}; "
                "its runs would not be comparable: choose another --out"
            )
    write_json_atomic(path, identity)


class _Progress(L.Callback):
    """Advances the benchmark-wide bar: which run, which epoch, ETA of everything left."""

    def __init__(self, bar: Progress, task: TaskID, label: str, per_second: bool) -> None:
        self.bar, self.task, self.label, self.per_second = bar, task, label, per_second
        self.start = time.monotonic()
        self.first_step = 0
        self.done_seconds = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.monotonic()
        self.first_step = trainer.global_step

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.bar.update(self.task, description=f"{self.label} · epoch {trainer.current_epoch}")

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.per_second:
            elapsed = time.monotonic() - self.start
            self.bar.advance(self.task, elapsed - self.done_seconds)
            self.done_seconds = elapsed
        else:
            self.bar.advance(self.task, 1)

    def record(self, trainer: L.Trainer, batch_size: int, crop: int) -> dict[str, Any]:
        seconds = time.monotonic() - self.start
        steps = trainer.global_step - self.first_step
        return {
            "steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "pixels_seen": trainer.global_step * batch_size * crop * crop,
            "train_seconds": round(seconds, 3),
            "train_images_per_s": round(steps * batch_size / seconds, 3) if seconds else None,
            "resumed": self.first_step > 0,
        }


def _steps_per_epoch(plan: BenchmarkPlan) -> int:
    recipe = plan.train_recipe
    samples = recipe.samples_per_epoch or len(scan_split(plan.data, "train"))
    return math.ceil(samples / recipe.batch_size)


def _units(budget: Budget, per_epoch: int) -> float:
    """Progress units of one run: optimizer steps, or seconds for a wall-clock budget."""
    if budget.kind == "steps":
        return budget.amount
    if budget.kind == "minutes":
        return budget.amount * 60
    return budget.amount * per_epoch


def _check_budgets(plan: BenchmarkPlan, per_epoch: int) -> None:
    """Refuse step budgets shorter than one epoch (no validation, so no weights).

    Raises:
        BenchmarkError: The budget, or the tuning share of it, is shorter than an epoch.
    """
    budgets = [("", plan.budget)]
    if plan.tuning is not None:
        budgets.append(("the tuning share of ", plan.budget.scaled(plan.tuning.fraction)))
    for what, budget in budgets:
        if budget.kind == "steps" and budget.amount < per_epoch:
            raise BenchmarkError(
                f"{what}{budget.amount:g} steps are less than one epoch ({per_epoch} steps), so "
                "no run would be validated and kept: lower --samples-per-epoch or raise --steps"
            )


def _curve(spec: RunSpec, per_epoch: int) -> CurveSpec | None:
    budget = spec.budget
    if spec.curve < 1:
        return None
    if budget.kind == "minutes":
        return CurveSpec.for_seconds(budget.amount * 60, spec.curve)
    total = budget.amount if budget.kind == "steps" else budget.amount * per_epoch
    return CurveSpec.for_steps(int(total), spec.curve)


def _train_one(
    spec: RunSpec, plan: BenchmarkPlan, callback: _Progress, per_epoch: int, say: Say
) -> None:
    from lale.training.bn_stats import PreciseBatchNorm
    from lale.training.run import TrainOptions, resume, train

    captured: dict[str, L.Trainer] = {}

    class _Capture(L.Callback):
        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            captured["trainer"] = trainer

    hooks = (callback, _Capture())
    budget = spec.budget
    recipe = replace(budget.recipe(plan.recipe), lr=spec.lr, bn_stats=spec.bn_stats or "running")
    minutes = budget.max_minutes if budget.max_minutes is not None else plan.cap_minutes
    hardware: dict[str, Any] = {
        "workers": plan.workers,
        "accelerator": plan.accelerator,
        "progress": False,
        "max_steps": budget.max_steps,
        "max_minutes": minutes,
        "callbacks": hooks,
        "curve": _curve(spec, per_epoch),
    }
    state = run_state(spec.run_dir)
    if state == "restart":
        shutil.rmtree(spec.run_dir)
    if state == "resume":
        say(f"{spec.entry.label} seed {spec.seed}: resuming {spec.run_dir}")
        resume(spec.run_dir, overrides=hardware, say=say)
    else:
        options = TrainOptions(
            data=plan.data,
            out=spec.run_dir,
            model=spec.entry.model,
            model_kwargs=dict(spec.entry.kwargs),
            init=None if spec.entry.init is None else Path(spec.entry.init),
            recipe=recipe,
            seed=spec.seed,
            skip_bad_pairs=plan.skip_bad_pairs,
            **hardware,
        )
        train(options, say=say)
    if "trainer" in captured:
        trainer = captured["trainer"]
        record = callback.record(trainer, recipe.batch_size, recipe.crop_size)
        callbacks = getattr(trainer, "callbacks", [])
        precise = [c for c in callbacks if isinstance(c, PreciseBatchNorm)]
        record["bn_recompute_seconds"] = round(precise[0].seconds, 3) if precise else 0.0
        record["bn_recomputes"] = precise[0].count if precise else 0
        write_json_atomic(spec.run_dir / RUN_RECORD, record)


class _Stage:
    """Trains a list of runs under the benchmark-wide progress bar."""

    def __init__(self, plan: BenchmarkPlan, bar: Progress, task: TaskID, say: Say) -> None:
        self.plan, self.bar, self.task, self.say = plan, bar, task, say
        self.per_epoch = _steps_per_epoch(plan)
        self.trained = 0
        self.done_units = 0.0

    def todo(self, runs: list[RunSpec]) -> list[RunSpec]:
        return [r for r in runs if run_state(r.run_dir) != "done"]

    def units(self, runs: list[RunSpec]) -> float:
        return sum(_units(r.budget, self.per_epoch) for r in self.todo(runs))

    def train(self, runs: list[RunSpec], what: str) -> None:
        todo = self.todo(runs)
        for i, spec in enumerate(todo, 1):
            label = f"{what} {i}/{len(todo)}: {spec.entry.label} lr {spec.lr:g} seed {spec.seed}"
            what_run = f"{spec.entry.label} (seed {spec.seed}, lr {spec.lr:g})"
            self.say(f"training {what_run} into {spec.run_dir}")
            callback = _Progress(self.bar, self.task, label, spec.budget.kind == "minutes")
            _train_one(spec, self.plan, callback, self.per_epoch, self.say)
            self.done_units += _units(spec.budget, self.per_epoch)
            self.bar.update(self.task, completed=self.done_units)
            self.trained += 1


def train_runs(
    plan: BenchmarkPlan,
    *,
    progress: bool = True,
    console: Console | None = None,
    say: Say = print,
) -> dict[str, Any]:
    """Train and test every run of ``plan`` that is not finished yet.

    The one-recipe runs come first, then the tuning runs, then the runs at the tuned
    learning rates (which the tuning decides).

    Returns:
        How many runs were ``skipped`` (already finished) and ``trained``, and the
        ``tuning`` record (``None`` without tuning).

    Raises:
        BenchmarkError: ``OUT`` holds runs of another data, budget or recipe.
        UnknownModelError: A model name is not registered.
    """
    from lale.benchmark.tuning import choose_lrs
    from lale.models.registry import model_kwargs

    for entry in plan.entries:  # unknown names fail here, before anything is written
        model_kwargs(entry.model)
    if not (plan.out / PLAN).is_file():  # bad data fail here too (later runs check it anyway)
        _check_data(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    check_plan(plan)
    recipe_runs = [r for p in plan.protocols() if p.lr == "recipe" for r in plan.runs(p)]
    recipe_runs = list({r.run_dir: r for r in recipe_runs}.values())
    tuning_runs = plan.tuning_runs()
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    total_runs = len(recipe_runs)
    skipped = 0
    with bar:
        task = bar.add_task("benchmark", total=None)
        stage = _Stage(plan, bar, task, say)
        _check_budgets(plan, stage.per_epoch)
        tuned_guess = len(recipe_runs) if plan.tuning else 0  # the tuning decides how many
        guess = stage.units(recipe_runs) + stage.units(tuning_runs)
        guess += tuned_guess * _units(plan.budget, stage.per_epoch)
        bar.update(task, total=guess)
        skipped += len(recipe_runs) - len(stage.todo(recipe_runs))
        if skipped:
            where = plan.out / "runs"
            say(f"{skipped} of {len(recipe_runs)} runs already finished in {where}: kept")
        stage.train(recipe_runs, "run")
        tuning = None
        if plan.tuning is not None:
            reusable = {r.run_dir for r in recipe_runs}
            own = [r for r in tuning_runs if not _reuses(plan, r, reusable)]
            stage.train(own, "tuning run")
            tuning = choose_lrs(plan, tuning_runs)
            write_json_atomic(plan.out / TUNING, tuning)
            lrs = {label: float(t["chosen"]) for label, t in tuning["models"].items()}
            tuned = [r for p in plan.protocols() if p.lr == "tuned" for r in plan.runs(p, lrs)]
            tuned = [r for r in {r.run_dir: r for r in tuned}.values() if r.run_dir not in reusable]
            total_runs += len(tuned)
            left = stage.todo(tuned)
            skipped += len(tuned) - len(left)
            bar.update(task, total=stage.done_units + stage.units(left))
            stage.train(left, "tuned run")
    return {"skipped": skipped, "trained": stage.trained, "runs": total_runs, "tuning": tuning}


def _check_data(plan: BenchmarkPlan) -> None:
    """Read every split's file headers as training will: bad input fails before ``OUT``."""
    from lale.data.dataset import SegmentationDataset
    from lale.data.schema import resolve_schema

    schema = resolve_schema(plan.data, None)
    for split in ("train", "val", "test"):
        SegmentationDataset(plan.data, split, schema, skip_bad=plan.skip_bad_pairs)


def _reuses(plan: BenchmarkPlan, spec: RunSpec, recipe_dirs: set[Path]) -> bool:
    from lale.benchmark.tuning import reused_run

    return reused_run(plan, spec) in recipe_dirs
