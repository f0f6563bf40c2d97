"""What a training run is given and what it returns: :class:`TrainOptions`, :class:`TrainResult`.

:func:`lale.training.run.train` runs them (``lale train``); the benchmark builds one per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from lale.recipe import Recipe
from lale.training.curve import CurveSpec

__all__ = ["TrainOptions", "TrainResult"]


@dataclass(frozen=True)
class TrainOptions:
    """One training run.

    Attributes:
        data: Dataset root in the ARAS400k layout.
        out: Run directory to create.
        model: Registered model name.
        model_kwargs: Overrides of the variant's defaults.
        schema: Class schema name or file; ``None``: ``DATA/schema.json`` if present, else
            the built-in ARAS400k schema.
        recipe: Optimisation settings.
        class_weights: ``"auto"`` computes inverse-sqrt-frequency weights from the training
            masks; ``None`` uses ``recipe.class_weights``.
        seed: Run seed (epoch order, crops, augmentation, initialisation).
        workers: DataLoader workers.
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``).
        devices: Devices per node.
        num_nodes: Nodes (DDP under torchrun or SLURM).
        strategy: Lightning strategy (``"auto"``, ``"ddp"``, ...).
        precision: Lightning precision; ``None``: ``"bf16-mixed"`` on GPU, else ``"32-true"``.
        checkpoint_every: Save the resumable state every this many steps (and each epoch).
        init: Run directory, or a ``.safetensors`` file of this very architecture, whose
            weights initialise this model (fine-tuning).
        pretrained: Start a baseline's encoder from its ImageNet weights (cached or fetched
            up front; a one-line error when neither works).
        strict: Mask colours outside the schema are errors instead of ignored pixels.
        progress: Show the progress bar.
        max_steps: Stop after this many steps (``-1``: no limit); for quick checks.
        max_minutes: Stop training after this much wall time (``None``: no limit); the run
            still validates, keeps its best weights and is tested.
        max_unknown: Largest fraction of mask pixels with colours outside the schema that a
            split may have (checked on a spread of its masks before training).
        callbacks: Extra Lightning callbacks (progress displays of a caller, ...).
        curve: Score val and test at these points of the budget too (``curve.json``).
        skip_bad_pairs: Leave out image/mask pairs whose files fail their checks (listed in
            one warning and in ``skipped_pairs.json``) instead of stopping; an error if no
            pair is left in a split.
    """

    data: Path
    out: Path
    model: str = "lale_t"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    schema: str | Path | None = None
    recipe: Recipe = field(default_factory=Recipe)
    class_weights: str | None = None
    seed: int = 0
    workers: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    checkpoint_every: int = 50
    init: Path | None = None
    pretrained: bool = False
    strict: bool = False
    progress: bool = True
    max_steps: int = -1
    max_minutes: float | None = None
    max_unknown: float = 0.5
    callbacks: tuple[L.Callback, ...] = ()
    curve: CurveSpec | None = None
    skip_bad_pairs: bool = False


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    best_score: float | None
    best_epoch: int | None
    epochs_run: int
    test_scores: dict[str, Any] | None
    stopped_early: bool
