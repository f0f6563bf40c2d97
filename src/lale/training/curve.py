"""Accuracy against budget from one training run: val and test scores at points of the budget.

:class:`BudgetCurve` scores the current weights on the validation and test splits when training
reaches each point of its budget (optimizer steps, or wall-clock seconds for a time budget) and
once more when training ends, and writes the points to ``curve.json`` as they come. Scoring
changes nothing the training depends on: the model returns to training mode, the global RNG
state is put back, and BatchNorm statistics re-estimated for scoring are replaced by the running
ones again, so a run with a curve trains exactly as one without, and resumes exactly (the points
travel with the checkpoint).

For models with BatchNorm every point is scored twice on the same weights, with the running
statistics and with statistics re-estimated on fixed training crops
(:mod:`lale.training.bn_stats`): the pure effect of the statistics, paired, whatever protocol
the run follows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from lale.atomic import write_json_atomic
from lale.data.transforms import normalize_input
from lale.recipe import BnStats
from lale.training.bn_stats import Batches, has_batch_norm, kept_bn_stats, recompute_bn_stats
from lale.training.metrics import SegmentationMetrics

__all__ = ["CURVE", "BudgetCurve", "CurveSpec", "curve_fractions"]

CURVE = "curve.json"
"""File of a run directory holding its budget curve."""


def curve_fractions(points: int) -> tuple[float, ...]:
    """``points`` fractions of a budget, each twice the one before and ending at 1.

    ``4`` gives 1/8, 1/4, 1/2 and 1; ``1`` only the end.
    """
    if points < 1:
        raise ValueError(f"a curve needs at least one point, got {points}")
    return tuple(2.0 ** (i - points + 1) for i in range(points))


@dataclass(frozen=True)
class CurveSpec:
    """Where a run's budget curve is scored.

    Attributes:
        steps: Optimizer steps at which to score (ascending), for step and epoch budgets.
        seconds: Training seconds at which to score (ascending), for a time budget.
        total: The whole budget, in steps or seconds; a point's ``fraction`` is its share.
    """

    steps: tuple[int, ...] = ()
    seconds: tuple[float, ...] = ()
    total: float = 1.0

    @classmethod
    def for_steps(cls, total: int, points: int) -> CurveSpec:
        """Points at :func:`curve_fractions` of ``total`` steps (each at least one step)."""
        steps = sorted({max(1, round(f * total)) for f in curve_fractions(points)})
        return cls(steps=tuple(steps), total=total)

    @classmethod
    def for_seconds(cls, total: float, points: int) -> CurveSpec:
        """Points at :func:`curve_fractions` of ``total`` seconds; the last at training's end."""
        return cls(seconds=tuple(f * total for f in curve_fractions(points)[:-1]), total=total)


def score_loader(
    net: nn.Module, loader: DataLoader[Any], metrics: SegmentationMetrics, spec: Any
) -> dict[str, Any]:
    """Scores of ``net`` (eval mode, no gradient) on every batch of ``loader``."""
    device = next(net.parameters()).device
    metrics.reset()
    with torch.inference_mode():
        for image, mask in loader:
            x = normalize_input(image.to(device), spec)
            metrics.update(net(x), mask.to(device).long())
    scores = metrics.scores()
    metrics.reset()
    return scores


class BudgetCurve(L.Callback):
    """Score val and test at the points of ``spec`` and at the end of training.

    Args:
        run_dir: Run directory (``curve.json`` is written there).
        spec: The points.
        bn_stats: The run's protocol: which statistics its headline scores use.
        bn_batches: Fixed training batches for re-estimated BatchNorm statistics.
        batch_size: Training samples per step and process (for the images-seen count).
    """

    def __init__(
        self,
        run_dir: Path,
        spec: CurveSpec,
        bn_stats: BnStats,
        bn_batches: Batches,
        batch_size: int,
    ) -> None:
        self.path = run_dir / CURVE
        self.spec, self.bn_stats, self.bn_batches = spec, bn_stats, bn_batches
        self.batch_size = batch_size
        self.points: list[dict[str, Any]] = []
        self.train_seconds = 0.0  # training wall time, scoring and validation excluded
        self._mark: float | None = None

    # -- time accounting --------------------------------------------------------------------
    def _pause(self) -> None:
        if self._mark is not None:
            self.train_seconds += time.monotonic() - self._mark
            self._mark = None

    def _resume(self) -> None:
        self._mark = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._resume()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pause()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._resume()

    # -- the points -------------------------------------------------------------------------
    def _elapsed(self) -> float:
        running = 0.0 if self._mark is None else time.monotonic() - self._mark
        return self.train_seconds + running

    def _due(self, trainer: L.Trainer) -> bool:
        done = len(self.points)
        if self.spec.steps:
            return done < len(self.spec.steps) and trainer.global_step >= self.spec.steps[done]
        return done < len(self.spec.seconds) and self._elapsed() >= self.spec.seconds[done]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        if self._mark is not None and self._due(trainer):
            self._pause()
            self._score(trainer, pl_module)
            self._resume()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pause()
        last = self.points[-1]["step"] if self.points else None
        if last != trainer.global_step and trainer.global_step > 0:
            self._score(trainer, pl_module)

    def _score(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net: nn.Module = getattr(pl_module, "net", pl_module)
        datamodule: Any = getattr(trainer, "datamodule")  # noqa: B009 (Lightning sets it)
        schema = datamodule.schema
        metrics = SegmentationMetrics(
            schema.num_classes, schema.ignore_index, list(schema.names), validate_args=False
        ).to(pl_module.device)
        loaders = {name: datamodule.eval_loader(name) for name in ("val", "test")}
        started = time.monotonic()
        rng = torch.get_rng_state()
        was_training = net.training
        net.eval()
        try:
            by_stats: dict[str, dict[str, Any]] = {}
            kinds: Sequence[BnStats] = ("running", "recompute") if has_batch_norm(net) else ()
            with kept_bn_stats(net):
                for kind in kinds or (self.bn_stats,):
                    if kind == "recompute" and kinds:
                        recompute_bn_stats(net, self.bn_batches)
                    by_stats[kind] = {
                        name: score_loader(net, loader, metrics, schema.image)
                        for name, loader in loaders.items()
                    }
        finally:
            net.train(was_training)
            torch.set_rng_state(rng)
        own = by_stats[self.bn_stats]
        test = own["test"]
        point: dict[str, Any] = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "fraction": round(self._fraction(trainer), 6),
            "images": trainer.global_step * self.batch_size * trainer.world_size,
            "train_seconds": round(self.train_seconds, 3),
            "score_seconds": round(time.monotonic() - started, 3),
            "val_f1": own["val"]["macro"]["f1"],
            "test_f1": test["macro"]["f1"],
            "test_miou": test["macro"]["iou"],
            "test_per_class_f1": {n: c["f1"] for n, c in test["per_class"].items()},
        }
        if kinds:
            point["bn"] = {
                k: {"val_f1": v["val"]["macro"]["f1"], "test_f1": v["test"]["macro"]["f1"]}
                for k, v in by_stats.items()
            }
        self.points.append(point)
        if trainer.is_global_zero:
            write_json_atomic(self.path, {"bn_stats": self.bn_stats, "points": self.points})

    def _fraction(self, trainer: L.Trainer) -> float:
        done = trainer.global_step if self.spec.steps else self.train_seconds
        return done / self.spec.total if self.spec.total else 1.0

    # -- exact resumption -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points, "train_seconds": self.train_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = list(state_dict["points"])
        self.train_seconds = float(state_dict["train_seconds"])
