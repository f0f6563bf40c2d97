"""Named benchmark set-ups: ``quick`` (embedded synthetic data, a 2-core CPU) and ``paper``.

``quick`` compares ``lale_s1`` with SegFormer-B0 (``segformer``), the paper's UPerNet and Unet on
the embedded synthetic land cover, 3 seeds, the same 240 optimizer steps of 16 crops of 128²
each, BatchNorm statistics re-estimated: measured 54 minutes on a 2-core CPU, most of it
UPerNet's three runs. ``frontier`` weighs ``lale_s1`` and ``lale_s2`` against the frontier
networks on the same data, recipe and budget. ``paper`` runs the
paper's rows on a copy of ARAS400k with the ARAS400k recipe (``lale train``'s defaults) for 20
epochs, 3 seeds: GPU-sized.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lale.benchmark.plan import DEFAULT_BN_STATS, Budget
from lale.recipe import BnStats, Recipe

__all__ = [
    "BN_CHOICES",
    "PRESETS",
    "BnChoice",
    "Preset",
    "ProtocolOptions",
    "SyntheticData",
    "ensure_synthetic",
]

BnChoice = Literal["running", "recompute", "both"]
BN_CHOICES: dict[str, tuple[BnStats, ...]] = {
    "running": ("running",),
    "recompute": ("recompute",),
    "both": ("running", "recompute"),
}


@dataclass(frozen=True)
class ProtocolOptions:
    """How a preset's runs are trained and compared, besides recipe and budget.

    Attributes:
        curve: Budget-curve points per run.
        bn_stats: Eval-mode BatchNorm statistics (``"both"``: a set of runs each).
        tune: Tune each model's learning rate (the tuned runs are the headline).
        tune_fraction: Share of the budget each tuning run trains.
    """

    curve: int = 4
    bn_stats: BnChoice = DEFAULT_BN_STATS
    tune: bool = False
    tune_fraction: float = 0.5


@dataclass(frozen=True)
class SyntheticData:
    """The embedded synthetic dataset a preset generates into ``OUT/data`` (``lale synth``)."""

    train: int
    val: int
    test: int
    size: int
    seed: int = 0


@dataclass(frozen=True)
class Preset:
    """A named benchmark set-up.

    Attributes:
        models: Registered model names, the LALE model first.
        seeds: Number of seeds.
        budget: Training budget of each run.
        recipe: The recipe every run shares.
        synthetic: Data to generate when ``--data`` is not given (``None``: ``--data`` needed).
        expected: Expected run time, as documented.
        protocol: Protocol options (command-line options override them).
    """

    models: tuple[str, ...]
    seeds: int
    budget: Budget
    recipe: Recipe = field(default_factory=Recipe)
    synthetic: SyntheticData | None = None
    expected: str = ""
    protocol: ProtocolOptions = field(default_factory=ProtocolOptions)


QUICK_BUDGET = Budget("steps", 240)
QUICK_RECIPE = Recipe(lr=2e-3, batch_size=16, crop_size=128, loss="dice+ce", samples_per_epoch=480)
QUICK_DATA = SyntheticData(train=480, val=32, test=48, size=128)
FRONTIER_MODELS = (
    "lale_s1",
    "lale_s2",
    "topformer_t",
    "topformer_s",
    "seaformer_t",
    "seaformer_s",
    "efficientvit_seg_b0",
    "efficientvit_seg_b1",
    "unetformer",
)
"""``frontier``: the paper's two small LALE variants, then every light network weighed with them."""

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        models=("lale_s1", "segformer", "upernet", "unet"),
        seeds=3,
        budget=QUICK_BUDGET,
        recipe=QUICK_RECIPE,
        synthetic=QUICK_DATA,
        expected=(
            "54 minutes on a 2-core CPU for the 12 runs (UPerNet's three take 25 of them), "
            "budget-curve scoring and BatchNorm re-estimation included"
        ),
    ),
    "frontier": Preset(
        models=FRONTIER_MODELS,
        seeds=3,
        budget=QUICK_BUDGET,
        recipe=QUICK_RECIPE,
        synthetic=QUICK_DATA,
        expected=(
            "about 33 minutes on a 2-core CPU for the 27 runs (lale_s1's three can be reused "
            "from the quick preset's folder with --data OUT/data)"
        ),
    ),
    "paper": Preset(
        models=(
            "lale_s1",
            "lale_s2",
            "upernet",
            "unet",
            "segformer:efficientnet-b0",
            "deit3_base",
            "maxvit_tiny",
        ),
        seeds=3,
        budget=Budget("epochs", 20),
        recipe=Recipe(),
        synthetic=None,
        expected=(
            "per model and seed, 20 epochs over ARAS400k's training split at batch 24 and 256² "
            "crops: epochs × training images ÷ the training images/s that results.json "
            "reports; measure it first with --steps 200 on the same GPU"
        ),
    ),
}


def ensure_synthetic(root: Path, spec: SyntheticData) -> Path:
    """The synthetic dataset ``spec`` in ``root``, generated unless the same one is there."""
    from lale.data.synthetic import write_dataset

    stamp = root / "synthetic.json"
    if stamp.is_file():
        meta = json.loads(stamp.read_text())
        counts = {k: v["count"] for k, v in meta.get("splits", {}).items()}
        wanted = {k: v for k, v in asdict(spec).items() if k in ("train", "val", "test")}
        if meta.get("seed") == spec.seed and meta.get("size") == spec.size and counts == wanted:
            return root
    write_dataset(root, spec.train, spec.val, spec.test, size=spec.size, seed=spec.seed)
    return root
