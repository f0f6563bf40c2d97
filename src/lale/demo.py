"""``lale demo``: the main job on the embedded synthetic data, start to finish — the trade-off.

Generate an ARAS400k-like dataset, train ``lale_t`` and one baseline (SegFormer-B0) on it with
the same recipe and the same budget of optimizer steps, test both, profile both on this machine,
and write ``results.json``, ``report.md`` and the figures (:mod:`lale.benchmark`) into one folder.
It ends with each model's test macro-F1 and one line per claim.

The demo recipe differs from the ARAS400k recipe (``lale train``'s defaults) only where a
2-core CPU and a 10-minute budget force it: 128² random crops of the 256² patches, batch 16,
``dice+ce`` (Dice alone learns slowly in few steps), learning rate 2e-3 and 240 optimizer
steps per run with a wall-time cap. Everything else (AdamW, clipping 1.0, augmentations,
ReduceLROnPlateau on validation macro-F1) is the recipe's.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lale.benchmark import BenchmarkPlan, Budget, Entry, claim_line, run_benchmark
from lale.benchmark.presets import SyntheticData, ensure_synthetic
from lale.benchmark.report import OUTPUTS
from lale.benchmark.runner import PLAN
from lale.recipe import Recipe

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. Defaults fit 10 minutes on a 2-core CPU.

    Attributes:
        model: The LALE variant.
        baseline: The baseline trained and profiled beside it on the same budget.
        train: Synthetic training patches (``val``, ``test`` likewise).
        val: Validation patches.
        test: Test patches.
        size: Patch side (also the profiling input).
        data_seed: Seed of the synthetic dataset.
        recipe: The demo recipe (see the module docstring).
        steps: Optimizer steps per run (the shared budget).
        minutes: Wall-time cap of each run (results record the steps actually made).
        profile_batch: Batch of the throughput measurement.
    """

    model: str = "lale_t"
    baseline: str = "segformer"
    train: int = 480
    val: int = 48
    test: int = 64
    size: int = 256
    data_seed: int = 0
    recipe: Recipe = field(
        default_factory=lambda: Recipe(lr=2e-3, batch_size=16, loss="dice+ce", crop_size=128)
    )
    steps: int = 240
    minutes: float = 4.0
    profile_batch: int = 8


def _clear(out: Path) -> None:
    """Remove what an earlier demo wrote into ``out`` (its dataset is kept)."""
    for name in (*OUTPUTS.values(), PLAN):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "runs", ignore_errors=True)


def plan_for(out: Path, cfg: DemoConfig, seeds: int = 1) -> BenchmarkPlan:
    """The benchmark the demo runs (its data in ``out/data``)."""
    return BenchmarkPlan(
        data=out / "data",
        out=out,
        entries=(Entry(cfg.model, cfg.model), Entry(cfg.baseline, cfg.baseline)),
        seeds=tuple(range(seeds)),
        budget=Budget("steps", cfg.steps),
        recipe=cfg.recipe,
        lale=cfg.model,
        accelerator="cpu",
        profile_size=cfg.size,
        profile_batch=cfg.profile_batch,
        cap_minutes=cfg.minutes,
    )


def run_demo(
    out: Path,
    cfg: DemoConfig | None = None,
    seeds: int = 1,
    progress: bool = True,
    say: Say = print,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the content of ``results.json``."""
    cfg = cfg or DemoConfig()
    out.mkdir(parents=True, exist_ok=True)
    synthetic = SyntheticData(cfg.train, cfg.val, cfg.test, cfg.size, cfg.data_seed)
    if (out / "data" / "synthetic.json").is_file():
        say(f"reusing the synthetic dataset in {out / 'data'} if it matches")
    else:
        say(f"generating {cfg.train + cfg.val + cfg.test} synthetic {cfg.size}² patches")
    ensure_synthetic(out / "data", synthetic)
    _clear(out)
    return run_benchmark(plan_for(out, cfg, seeds), progress=progress, say=say)


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2%}"
    return f"{statistics.mean(values):.2%} ± {statistics.stdev(values):.2%} (n={len(values)})"


def headline(results: dict[str, Any]) -> list[str]:
    """The lines the demo ends with: each model's test macro-F1, then one line per claim."""
    lines = []
    for row in results["models"]:
        steps = sorted(set(row["train"]["steps"]))
        lines.append(
            f"{row['model']} test macro-F1: {_mean_std(row['macro_f1']['values'])} "
            f"after {'/'.join(map(str, steps))} steps"
        )
    return lines + [claim_line(c) for c in results["claims"]]
