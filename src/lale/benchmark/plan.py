"""What a benchmark runs: models (or one model's ablation variants) × seeds, one recipe, one budget.

Every run of a benchmark shares the recipe (crops, batch, augmentation, loss, optimiser) and the
budget (epochs, optimizer steps or wall-clock minutes per run); only the model and the seed
change. Each (model, seed) trains into its own run directory under ``OUT/runs``, so a killed
benchmark continues with what is missing and a new model or seed trains only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lale.errors import UsageError
from lale.recipe import Recipe

__all__ = [
    "ABLATIONS",
    "AblationName",
    "BenchmarkPlan",
    "Budget",
    "BudgetKind",
    "Entry",
    "RunSpec",
    "ablation_entries",
    "parse_models",
]

BudgetKind = Literal["epochs", "steps", "minutes"]
AblationName = Literal["attention", "kernel", "norm-act", "decoder"]
RUNS = "runs"
"""Folder of ``OUT`` that holds one run directory per (model, seed): ``runs/LABEL/seed_K``."""


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
    """

    label: str
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One (model, seed) run and its directory."""

    entry: Entry
    seed: int
    run_dir: Path


@dataclass(frozen=True)
class BenchmarkPlan:
    """A whole benchmark.

    Attributes:
        data: Dataset root (``{train,val,test}/{images,masks}``).
        out: Output folder: ``plan.json``, ``runs/``, results, report and figures.
        entries: The models, in report order.
        seeds: Run seeds.
        budget: Training budget of every run.
        recipe: The one recipe (its ``epochs`` and ``early_stopping`` are set by the budget).
        lale: Label of the LALE model the claims are about (``None``: the first LALE entry).
        ablation: Name of the ablation, if this is one (the first entry is its reference).
        workers: Data-loader workers.
        accelerator: Lightning accelerator.
        profile_size: Input side for GMACs and throughput.
        profile_batch: Batch of the CPU throughput measurement.
        cap_minutes: Wall-time safety cap of every run besides the budget (``None``: none), for
            jobs that must end in time, like ``lale demo``; ``results.json`` records the
            steps each run actually made.
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

    @property
    def train_recipe(self) -> Recipe:
        return self.budget.recipe(self.recipe)

    def runs(self) -> list[RunSpec]:
        """Every (model, seed) in order: seed by seed, so early seeds of all models come first."""
        return [
            RunSpec(e, s, self.out / RUNS / e.label.replace("/", "_") / f"seed_{s}")
            for s in self.seeds
            for e in self.entries
        ]

    def identity(self) -> dict[str, Any]:
        """What every run of ``out`` must share (``plan.json``); models and seeds may grow."""
        return {
            "data": str(self.data),
            "budget": {"kind": self.budget.kind, "amount": self.budget.amount},
            "recipe": self.train_recipe.to_dict(),
        }


def parse_models(text: str) -> tuple[Entry, ...]:
    """``"lale_t,unet"`` → entries labelled by their names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(Entry(n, n) for n in names)


# The ablations: variants of one LALE model; the first variant is the paper's, the reference.
ABLATIONS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "attention": (
        ("attn16", {"mixers": ["conv", "conv", "attn", "attn"]}),  # attention at 1/16 and 1/32
        ("attn8", {"mixers": ["conv", "attn", "attn", "attn"]}),  # from 1/8
        ("attn4", {"mixers": ["attn", "attn", "attn", "attn"]}),  # from 1/4
        ("noattn", {"mixers": ["conv", "conv", "conv", "conv"]}),
    ),
    "kernel": (("K7", {"kernel_size": 7}), ("K3", {"kernel_size": 3})),
    "norm-act": (
        ("rms+starrelu", {"norm": "rms", "act": "starrelu"}),
        ("bn-ln+gelu", {"norm": "classic", "act": "gelu"}),
    ),
    "decoder": (
        ("D128", {"decoder_dim": 128}),
        ("D64", {"decoder_dim": 64}),
        ("D256", {"decoder_dim": 256}),
    ),
}


def ablation_entries(
    name: str, model: str, base: dict[str, Any] | None = None
) -> tuple[Entry, ...]:
    """The variants of ``model`` that ablation ``name`` compares, the model's own setting first.

    The first variant is the reference of the verdicts: the one that is ``model`` as registered
    (e.g. ``D64`` for ``lale_t``'s decoder), else the paper's setting. Variants the model's
    widths cannot build are left out (an attention stage's width must split evenly into
    :func:`~lale.models.blocks.attention_heads`; every registered LALE model's widths do).

    Args:
        name: ``attention``, ``kernel``, ``norm-act`` or ``decoder``.
        model: The LALE model whose variants are built.
        base: Options every variant shares (e.g. a shrunken model for tests).

    Raises:
        UsageError: Unknown ablation name.
    """
    from lale.models.registry import model_kwargs

    if name not in ABLATIONS:
        raise UsageError(f"unknown ablation {name!r}; choose from {', '.join(ABLATIONS)}")
    own = {**model_kwargs(model), **(base or {})}
    variants = sorted(
        ABLATIONS[name],
        key=lambda v: not all(_same(own.get(k), x) for k, x in v[1].items()),
    )  # stable: the paper's order otherwise
    return tuple(
        Entry(f"{model}-{label}", model, {**(base or {}), **kwargs})
        for label, kwargs in variants
        if _buildable(model, {**(base or {}), **kwargs})
    )


def _buildable(model: str, kwargs: dict[str, Any]) -> bool:
    from lale.models.network import LaleConfig
    from lale.models.registry import model_kwargs

    fields = LaleConfig.__dataclass_fields__
    options = {k: v for k, v in model_kwargs(model, **kwargs).items() if k in fields}
    try:
        LaleConfig(**options)
    except ValueError:
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)
