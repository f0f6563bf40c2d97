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
from pathlib import Path
from typing import Any

import lightning as L
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from lale.atomic import write_json_atomic
from lale.benchmark.plan import BenchmarkPlan, RunSpec
from lale.data.dataset import scan_split
from lale.errors import WorkFailedError
from lale.run_layout import CHECKPOINT, CONFIG, TEST_METRICS

__all__ = ["PLAN", "RUN_RECORD", "BenchmarkError", "run_state", "train_runs"]

PLAN = "plan.json"
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


def _steps_per_run(plan: BenchmarkPlan) -> float:
    """Progress units of one run: optimizer steps, or seconds for a wall-clock budget.

    Raises:
        BenchmarkError: A step budget shorter than one epoch (no validation, so no weights).
    """
    budget, recipe = plan.budget, plan.train_recipe
    samples = recipe.samples_per_epoch or len(scan_split(plan.data, "train"))
    per_epoch = math.ceil(samples / recipe.batch_size)
    if budget.kind == "steps" and budget.amount < per_epoch:
        raise BenchmarkError(
            f"{budget.amount:g} steps are less than one epoch ({per_epoch} steps), so no run "
            "would be validated and kept: lower --samples-per-epoch or raise --steps"
        )
    if budget.kind == "steps":
        return budget.amount
    if budget.kind == "minutes":
        return budget.amount * 60
    return budget.amount * per_epoch


def _train_one(spec: RunSpec, plan: BenchmarkPlan, callback: _Progress, say: Say) -> None:
    from lale.training.run import TrainOptions, resume, train

    captured: dict[str, L.Trainer] = {}

    class _Capture(L.Callback):
        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            captured["trainer"] = trainer

    hooks = (callback, _Capture())
    budget, recipe = plan.budget, plan.train_recipe
    minutes = budget.max_minutes if budget.max_minutes is not None else plan.cap_minutes
    state = run_state(spec.run_dir)
    if state == "restart":
        shutil.rmtree(spec.run_dir)
    if state == "resume":
        say(f"{spec.entry.label} seed {spec.seed}: resuming {spec.run_dir}")
        hardware = {
            "workers": plan.workers,
            "accelerator": plan.accelerator,
            "progress": False,
            "max_steps": budget.max_steps,
            "max_minutes": minutes,
            "callbacks": hooks,
        }
        resume(spec.run_dir, overrides=hardware, say=say)
    else:
        options = TrainOptions(
            data=plan.data,
            out=spec.run_dir,
            model=spec.entry.model,
            model_kwargs=dict(spec.entry.kwargs),
            recipe=recipe,
            seed=spec.seed,
            workers=plan.workers,
            accelerator=plan.accelerator,
            progress=False,
            max_steps=budget.max_steps,
            max_minutes=minutes,
            callbacks=hooks,
        )
        train(options, say=say)
    if "trainer" in captured:
        record = callback.record(captured["trainer"], recipe.batch_size, recipe.crop_size)
        write_json_atomic(spec.run_dir / RUN_RECORD, record)


def train_runs(
    plan: BenchmarkPlan,
    *,
    progress: bool = True,
    console: Console | None = None,
    say: Say = print,
) -> dict[str, int]:
    """Train and test every run of ``plan`` that is not finished yet.

    Returns:
        How many runs were ``skipped`` (already finished) and ``trained``.

    Raises:
        BenchmarkError: ``OUT`` holds runs of another data, budget or recipe.
        UnknownModelError: A model name is not registered.
    """
    from lale.models.registry import model_kwargs

    for entry in plan.entries:  # unknown names fail here, before anything is written
        model_kwargs(entry.model)
    plan.out.mkdir(parents=True, exist_ok=True)
    check_plan(plan)
    runs = plan.runs()
    todo = [r for r in runs if run_state(r.run_dir) != "done"]
    skipped = len(runs) - len(todo)
    if skipped:
        say(f"{skipped} of {len(runs)} runs already finished in {plan.out / 'runs'}: kept")
    per_run = _steps_per_run(plan)
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("benchmark", total=per_run * len(todo))
        for i, spec in enumerate(todo, 1):
            label = f"run {i}/{len(todo)}: {spec.entry.label} seed {spec.seed}"
            say(f"training {spec.entry.label} (seed {spec.seed}) into {spec.run_dir}")
            callback = _Progress(bar, task, label, plan.budget.kind == "minutes")
            _train_one(spec, plan, callback, say)
            bar.update(task, completed=per_run * i)
    return {"skipped": skipped, "trained": len(todo)}
