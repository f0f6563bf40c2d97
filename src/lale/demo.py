"""``lale demo``: the main job on the embedded synthetic data, start to finish.

Generate an ARAS400k-like dataset, train ``lale_t`` on it, test it, measure it against UPerNet
and SegFormer on this machine, and write figures and ``report.md`` into one run directory.

The demo recipe differs from the ARAS400k recipe (``lale train``'s defaults) only where a
2-core CPU and a 10-minute budget force it: 128² random crops of the 256² patches, batch 16,
``dice+ce`` (Dice alone learns slowly in few steps), learning rate 2e-3 and a fixed number of
epochs with a wall-time cap. Everything else (AdamW, clipping 1.0, augmentations,
ReduceLROnPlateau on validation macro-F1) is the recipe's.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.data.synthetic import write_dataset
from lale.formatting import percent
from lale.profiling import ProfileRun, TimingConfig, profile_models, ratio_summary
from lale.profiling.tables import profile_markdown
from lale.recipe import Recipe
from lale.run_layout import run_files
from lale.training.run import TrainOptions, TrainResult, train

Say = Callable[[str], None]
# Files a previous demo left in its run directory (removed before a new one starts).
_EFFICIENCY, _REPORT, _SUMMARY = "efficiency.json", "report.md", "summary.json"
_OWN = (*run_files(), _EFFICIENCY, _REPORT, _SUMMARY)


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. Defaults fit 10 minutes on a 2-core CPU.

    Attributes:
        model: The LALE variant trained and profiled.
        rivals: Baselines it is profiled against; the first is the ratio reference.
        train: Synthetic training patches (``val``, ``test`` likewise).
        val: Validation patches.
        test: Test patches.
        size: Patch side.
        data_seed: Seed of the synthetic dataset.
        recipe: The demo recipe (see the module docstring).
        minutes: Wall-time cap of each training run.
        profile_batch: Batch of the throughput measurement.
    """

    model: str = "lale_t"
    rivals: tuple[str, ...] = ("upernet", "segformer")
    train: int = 480
    val: int = 48
    test: int = 64
    size: int = 256
    data_seed: int = 0
    recipe: Recipe = field(
        default_factory=lambda: Recipe(
            lr=2e-3, batch_size=16, epochs=8, loss="dice+ce", crop_size=128, early_stopping=0
        )
    )
    minutes: float = 6.0
    profile_batch: int = 8


@dataclass
class DemoResult:
    """Scores of every seed and the efficiency comparison."""

    out: Path
    runs: list[TrainResult]
    profile: ProfileRun | None

    @property
    def macro_f1(self) -> list[float]:
        return [r.test_scores["macro"]["f1"] for r in self.runs if r.test_scores is not None]


def _dataset(out: Path, cfg: DemoConfig, say: Say, workers: int) -> Path:
    """The synthetic dataset under ``out/data``, generated unless an identical one is there."""
    data = out / "data"
    counts = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    stamp = data / "synthetic.json"
    if stamp.is_file():
        meta = json.loads(stamp.read_text())
        same = meta.get("seed") == cfg.data_seed and meta.get("size") == cfg.size
        if same and {k: v["count"] for k, v in meta["splits"].items()} == counts:
            say(f"reusing the synthetic dataset in {data}")
            return data
    say(f"generating {sum(counts.values())} synthetic {cfg.size}² patches in {data}")
    write_dataset(
        data, cfg.train, cfg.val, cfg.test, size=cfg.size, seed=cfg.data_seed, workers=workers
    )
    return data


def _clear(run_dir: Path) -> None:
    """Remove what an earlier demo wrote into ``run_dir`` (its dataset is kept)."""
    for name in _OWN:
        (run_dir / name).unlink(missing_ok=True)
    for sub in ("checkpoints", "seeds"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)


def run_demo(
    out: Path,
    cfg: DemoConfig | None = None,
    seeds: int = 1,
    workers: int = 2,
    progress: bool = True,
    say: Say = print,
) -> DemoResult:
    """Run the demo into ``out`` (dataset in ``out/data``, first seed's run in ``out``)."""
    cfg = cfg or DemoConfig()
    out.mkdir(parents=True, exist_ok=True)
    data = _dataset(out, cfg, say, workers)
    _clear(out)
    runs = []
    for k in range(seeds):
        run_dir = out if k == 0 else out / "seeds" / f"seed_{k}"
        say(f"training {cfg.model} (seed {k}) into {run_dir}")
        options = TrainOptions(
            data=data,
            out=run_dir,
            model=cfg.model,
            recipe=cfg.recipe,
            seed=k,
            workers=0,
            accelerator="cpu",
            progress=progress,
            max_minutes=cfg.minutes,
        )
        runs.append(train(options, say=say))
    say(f"profiling {cfg.model} against {', '.join(cfg.rivals)}")
    timing = TimingConfig(size=cfg.size, batch_size=cfg.profile_batch, warmup=2, repeats=5)
    profile = profile_models([cfg.model, *cfg.rivals], timing, reference=cfg.rivals[0])
    write_json_atomic(out / _EFFICIENCY, profile.to_dict())
    result = DemoResult(out, runs, profile)
    write_bytes_atomic(out / _REPORT, report(result, cfg, data).encode())
    write_json_atomic(out / _SUMMARY, summary(result, cfg))
    return result


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2%}"
    return f"{statistics.mean(values):.2%} ± {statistics.stdev(values):.2%} (n={len(values)})"


def summary(result: DemoResult, cfg: DemoConfig) -> dict[str, Any]:
    """The demo's headline numbers as JSON."""
    f1 = result.macro_f1
    ratios: dict[str, Any] = {}
    if result.profile is not None:
        for rival in cfg.rivals:
            r = result.profile.ratios(rival).get(cfg.model)
            ratios[rival] = None if r is None else asdict(r)
    return {
        "model": cfg.model,
        "test_macro_f1": f1,
        "test_macro_f1_mean": statistics.mean(f1) if f1 else None,
        "test_macro_f1_std": statistics.stdev(f1) if len(f1) > 1 else None,
        "epochs_run": [r.epochs_run for r in result.runs],
        "ratios": ratios,
    }


def headline(result: DemoResult, cfg: DemoConfig) -> list[str]:
    """The lines the demo ends with: macro-F1 and one efficiency sentence per rival."""
    lines = [f"{cfg.model} test macro-F1: {_mean_std(result.macro_f1)}"]
    if result.profile is not None:
        lines += [ratio_summary(result.profile, cfg.model, rival) for rival in cfg.rivals]
    return lines


def report(result: DemoResult, cfg: DemoConfig, data: Path) -> str:
    """``report.md``: what was run, the scores, the efficiency table and the figures."""
    first = result.runs[0].test_scores if result.runs else None
    rows = ["| class | F1 | IoU | precision | recall |", "| --- | ---: | ---: | ---: | ---: |"]
    if first is not None:
        for name, c in first["per_class"].items():
            cells = [c[k] for k in ("f1", "iou", "precision", "recall")]
            rows.append(f"| {name} | " + " | ".join(percent(v) for v in cells) + " |")
        macro = first["macro"]
        rows.append(
            "| **macro** | "
            + " | ".join(percent(macro[k]) for k in ("f1", "iou", "precision", "recall"))
            + " |"
        )
    r = cfg.recipe
    parts = [
        f"# lale demo: {cfg.model} on synthetic land cover",
        "",
        f"- **data**: {data} — {cfg.train} / {cfg.val} / {cfg.test} synthetic {cfg.size}² "
        f"patches (seed {cfg.data_seed}), ARAS400k classes",
        f"- **recipe**: AdamW lr {r.lr}, batch {r.batch_size}, {r.crop_size}² crops, "
        f"loss {r.loss}, up to {r.epochs} epochs or {cfg.minutes} min per seed, clipping "
        f"{r.grad_clip}, ReduceLROnPlateau on validation macro-F1",
        f"- **seeds**: {len(result.runs)}; epochs run: {[x.epochs_run for x in result.runs]}",
        f"- **test macro-F1**: {_mean_std(result.macro_f1)}",
        "",
        "## Test split (seed 0)",
        "",
        *rows,
        "",
        "![confusion matrix](confusion_matrix.png) ![per class](per_class.png)",
        "",
        "![history](history.png)",
        "",
        "![samples](samples.png)",
        "",
        "## Efficiency on this machine",
        "",
    ]
    if result.profile is not None:
        parts += [profile_markdown(result.profile), ""]
        parts += [f"- {line}" for line in headline(result, cfg)[1:]]
    return "\n".join(parts) + "\n"
