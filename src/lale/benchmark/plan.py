"""What a benchmark runs: models (or one model's ablation variants) × protocols × seeds.

Every run of a benchmark shares the recipe (crops, batch, augmentation, loss, optimiser) and the
budget (epochs, optimizer steps or wall-clock minutes per run); only the model, the seed and the
protocol change. A protocol is the learning rate (the recipe's for every model, or each model's
own, tuned on the validation split at a short budget: :class:`Tuning`) and the eval-mode BatchNorm
statistics (running or re-estimated, :mod:`lale.training.bn_stats`). Each (model, learning rate,
statistics, seed) trains into its own run directory under ``OUT/runs``, shared by the protocols
that coincide (a model without BatchNorm trains once for both statistics), so a killed benchmark
continues with what is missing and a new model, seed or protocol trains only that.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lale.benchmark.statistics import SeedTest
from lale.errors import UsageError
from lale.recipe import BN_STATS, BnStats, Recipe

__all__ = [
    "DEFAULT_BN_STATS",
    "AblationName",
    "BenchmarkPlan",
    "Budget",
    "BudgetKind",
    "Entry",
    "Protocol",
    "RunSpec",
    "Tuning",
    "parse_models",
]

BudgetKind = Literal["epochs", "steps", "minutes"]
AblationName = Literal["attention", "kernel", "norm-act", "decoder", "pretraining"]
LrChoice = Literal["recipe", "tuned"]
RUNS = "runs"
"""Folder of ``OUT`` with one run directory per run: ``runs/LABEL/VARIANT/seed_K``."""
TUNE = "tune"
"""Folder of ``OUT`` with the learning-rate tuning runs: ``tune/LABEL/VARIANT/seed_K``."""
DEFAULT_BN_STATS: BnStats = "recompute"
"""The benchmark's default protocol for BatchNorm statistics (measured: docs/benchmark.md)."""


@dataclass(frozen=True)
class Budget:
    """The training budget of every run.

    Attributes:
        kind: ``"epochs"``, ``"steps"`` (optimizer steps) or ``"minutes"`` (wall clock).
        amount: How many.
    """

    kind: BudgetKind
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in ("epochs", "steps", "minutes"):
            raise UsageError(f"budget must be epochs, steps or minutes, got {self.kind!r}")
        if self.amount <= 0:
            raise UsageError(f"the budget must be positive, got {self.amount}")

    def describe(self) -> str:
        amount = f"{self.amount:g}"
        return f"{amount} {self.kind} per run"

    def recipe(self, recipe: Recipe) -> Recipe:
        """``recipe`` with this budget's epochs, no early stopping (the same budget for all)."""
        epochs = int(self.amount) if self.kind == "epochs" else 10_000
        return replace(recipe, epochs=epochs, early_stopping=0)

    def scaled(self, fraction: float) -> Budget:
        """``fraction`` of this budget (whole epochs and steps, at least one)."""
        amount = self.amount * fraction
        if self.kind != "minutes":
            amount = max(1, round(amount))
        return Budget(self.kind, amount)

    @property
    def max_steps(self) -> int:
        return int(self.amount) if self.kind == "steps" else -1

    @property
    def max_minutes(self) -> float | None:
        return self.amount if self.kind == "minutes" else None


@dataclass(frozen=True)
class Entry:
    """One model of the benchmark: a registered name and the options that make the variant.

    Attributes:
        label: Name in the results (the model name, or the variant's name in an ablation).
        model: Registered model name.
        kwargs: Model options (``LaleConfig`` fields for LALE variants).
        init: Weights the runs start from (``lale train --init``: a pretraining run, a run
            directory or ``hf-hub:ORG/NAME``); ``None``: random initialisation.
    """

    label: str
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: str | None = None


@dataclass(frozen=True)
class Protocol:
    """How a set of runs is trained and scored besides the shared recipe and budget.

    Attributes:
        lr: ``"recipe"`` (one learning rate for every model, the paper's protocol) or
            ``"tuned"`` (each model's best of the tuning grid).
        bn_stats: Eval-mode BatchNorm statistics (no effect on models without BatchNorm).
    """

    lr: LrChoice
    bn_stats: BnStats

    @property
    def key(self) -> str:
        return f"{self.lr}-{self.bn_stats}"

    def describe(self) -> str:
        lr = "one recipe lr" if self.lr == "recipe" else "tuned lr"
        bn = "BN recomputed" if self.bn_stats == "recompute" else "BN running"
        return f"{lr}, {bn}"


@dataclass(frozen=True)
class Tuning:
    """Per-model learning-rate tuning on the validation split.

    Each grid value trains the model once (the plan's first seed) for ``fraction`` of the
    budget; the value with the best validation macro-F1 trains the "tuned" runs.

    Attributes:
        grid: Learning rates to try (``None``: the recipe's × 1/3, 1 and 3).
        fraction: Share of the budget each tuning run trains.
    """

    grid: tuple[float, ...] | None = None
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.grid is not None and (not self.grid or min(self.grid) <= 0):
            raise UsageError(f"the learning-rate grid needs positive values, got {self.grid}")
        if not 0 < self.fraction <= 1:
            raise UsageError(f"the tuning budget must be a fraction in (0, 1], got {self.fraction}")

    def values(self, recipe_lr: float) -> tuple[float, ...]:
        """The grid, or the recipe's learning rate × 1/3, 1 and 3 (two significant digits)."""
        if self.grid is not None:
            return tuple(sorted(set(self.grid)))
        return tuple(sorted({float(f"{recipe_lr * f:.2g}") for f in (1 / 3, 1.0, 3.0)}))


@dataclass(frozen=True)
class RunSpec:
    """One run and its directory.

    Attributes:
        entry: The model.
        seed: Run seed.
        run_dir: Its run directory.
        lr: Its learning rate.
        bn_stats: Its eval-mode BatchNorm statistics (``None``: the model has no BatchNorm).
        budget: Its budget (a share of the plan's for a tuning run).
        curve: Points of the budget curve to score (0: none).
    """

    entry: Entry
    seed: int
    run_dir: Path
    lr: float
    bn_stats: BnStats | None
    budget: Budget
    curve: int


@dataclass(frozen=True)
class BenchmarkPlan:
    """A whole benchmark.

    Attributes:
        data: Dataset root (``{train,val,test}/{images,masks}``).
        out: Output folder: ``plan.json``, ``runs/``, results, report and figures.
        entries: The models, in report order.
        seeds: Run seeds.
        budget: Training budget of every run.
        recipe: The one recipe (its ``epochs`` and ``early_stopping`` are set by the budget;
            ``lr`` is the one-recipe learning rate; ``bn_stats`` is set per protocol).
        lale: Label of the LALE model the claims are about (``None``: the first LALE entry).
        ablation: Name of the ablation, if this is one (the first entry is its reference).
        workers: Data-loader workers.
        accelerator: Lightning accelerator.
        profile_size: Input side for GMACs and throughput.
        profile_batch: Batch of the CPU throughput measurement.
        cap_minutes: Wall-time safety cap of every run besides the budget (``None``: none), for
            jobs that must end in time, like ``lale demo``; ``results.json`` records the
            steps each run actually made.
        curve: Points of each run's budget curve (val and test scored at 1/8, 1/4, 1/2 and
            all of the budget for 4; 1: the end only).
        bn_stats: The BatchNorm protocols to run (each a set of runs for models with
            BatchNorm); the report's headline uses ``"recompute"`` when it is among them.
        tuning: Tune each model's learning rate too; the "tuned" protocol (with the headline
            statistics) is then the headline.
        test: The test over seeds: ``"paired"`` (seeds share data order and crops) or
            ``"welch"``.
        bootstrap: Resamples of the test images for the bootstrap interval of each gap.
        power_gap: The gap (fraction of F1) the power line reports seeds for.
        skip_bad_pairs: Leave out image/mask pairs whose files fail their checks.
    """

    data: Path
    out: Path
    entries: tuple[Entry, ...]
    seeds: tuple[int, ...]
    budget: Budget
    recipe: Recipe = field(default_factory=Recipe)
    lale: str | None = None
    ablation: AblationName | None = None
    workers: int = 0
    accelerator: str = "auto"
    profile_size: int = 256
    profile_batch: int = 8
    cap_minutes: float | None = None
    curve: int = 4
    bn_stats: tuple[BnStats, ...] = (DEFAULT_BN_STATS,)
    tuning: Tuning | None = None
    test: SeedTest = "paired"
    bootstrap: int = 1000
    power_gap: float = 0.02
    skip_bad_pairs: bool = False

    def __post_init__(self) -> None:
        labels = [e.label for e in self.entries]
        if not labels:
            raise UsageError("a benchmark needs at least one model")
        if len(set(labels)) != len(labels):
            raise UsageError(f"model names repeat: {', '.join(labels)}")
        if not self.seeds:
            raise UsageError("a benchmark needs at least one seed")
        if self.lale is not None and self.lale not in labels:
            raise UsageError(f"--lale {self.lale} is not one of the models ({', '.join(labels)})")
        if not self.bn_stats or any(b not in BN_STATS for b in self.bn_stats):
            raise UsageError(f"bn_stats must be among {', '.join(BN_STATS)}, got {self.bn_stats}")
        if self.curve < 1:
            raise UsageError(f"a budget curve needs at least one point, got {self.curve}")

    @property
    def train_recipe(self) -> Recipe:
        return self.budget.recipe(self.recipe)

    def protocols(self) -> tuple[Protocol, ...]:
        """Every protocol of the plan, the headline last.

        One recipe learning rate under each BatchNorm protocol asked for; with tuning, the
        tuned learning rates under the headline statistics (``"recompute"`` if asked for).
        """
        bns = sorted(set(self.bn_stats), key=lambda b: b == "recompute")
        protocols = [Protocol("recipe", bn) for bn in bns]
        if self.tuning is not None:
            protocols.append(Protocol("tuned", bns[-1]))
        return tuple(protocols)

    @property
    def headline(self) -> Protocol:
        """The protocol the report leads with: the most careful one run."""
        return self.protocols()[-1]

    def has_bn(self, entry: Entry) -> bool:
        """Whether ``entry``'s network has BatchNorm layers (built shape-only, once)."""
        return _has_bn(entry.model, json.dumps(entry.kwargs, sort_keys=True))

    def _spec(
        self, entry: Entry, seed: int, lr: float, bn: BnStats, root: str, budget: Budget, curve: int
    ) -> RunSpec:
        stats = bn if self.has_bn(entry) else None
        variant = f"lr{lr:g}" + (f"-bn{stats}" if stats else "")
        run_dir = self.out / root / entry.label.replace("/", "_") / variant / f"seed_{seed}"
        return RunSpec(entry, seed, run_dir, lr, stats, budget, curve)

    def runs(
        self, protocol: Protocol | None = None, lrs: dict[str, float] | None = None
    ) -> list[RunSpec]:
        """The runs of ``protocol`` (default: of every protocol, each run once), seed by seed.

        Args:
            protocol: One protocol, or ``None`` for all.
            lrs: Tuned learning rate per entry label (needed for "tuned" protocols).
        """
        chosen = (protocol,) if protocol else self.protocols()
        specs: dict[Path, RunSpec] = {}
        for proto in chosen:
            for seed in self.seeds:
                for e in self.entries:
                    if proto.lr == "tuned" and (lrs is None or e.label not in lrs):
                        raise ValueError(f"no tuned learning rate for {e.label}")
                    lr = self.recipe.lr if proto.lr == "recipe" else (lrs or {})[e.label]
                    spec = self._spec(e, seed, lr, proto.bn_stats, RUNS, self.budget, self.curve)
                    specs.setdefault(spec.run_dir, spec)
        return list(specs.values())

    def tuning_runs(self) -> list[RunSpec]:
        """The learning-rate tuning runs (first seed, a share of the budget, no curve)."""
        if self.tuning is None:
            return []
        budget = self.budget.scaled(self.tuning.fraction)
        bn = self.headline.bn_stats
        return [
            self._spec(e, self.seeds[0], lr, bn, TUNE, budget, 0)
            for e in self.entries
            for lr in self.tuning.values(self.recipe.lr)
        ]

    def identity(self) -> dict[str, Any]:
        """What every run of ``out`` must share (``plan.json``); models, seeds and protocols
        may grow."""
        recipe = self.train_recipe.to_dict()
        recipe.pop("bn_stats")  # set per protocol
        identity = {
            "data": str(self.data),
            "budget": {"kind": self.budget.kind, "amount": self.budget.amount},
            "recipe": recipe,
            "curve": self.curve,
            "skip_bad_pairs": self.skip_bad_pairs,
        }
        if inits := {e.label: e.init for e in self.entries if e.init is not None}:
            identity["init"] = inits  # a PT run of other weights is another run
        return identity


@functools.lru_cache(maxsize=256)
def _has_bn(model: str, kwargs: str) -> bool:
    from lale.models.registry import create_model
    from lale.profiling.counting import meta_weights
    from lale.training.bn_stats import has_batch_norm

    options = json.loads(kwargs)
    with meta_weights():
        return has_batch_norm(create_model(model, **options))


def parse_models(text: str) -> tuple[Entry, ...]:
    """``"lale_t,unet"`` → entries labelled by their names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(Entry(n, n) for n in names)
