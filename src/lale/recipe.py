"""Training recipes: the optimisation settings, and the record of them a run directory keeps.

Light on purpose (no Lightning, no torchmetrics): :mod:`lale.runs` types ``RunConfig.recipe``
with :class:`RunRecipe`, and reading a run must not import the trainer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lale.data.augment import AugmentConfig

__all__ = ["BN_STATS", "LOSS_NAMES", "BnStats", "LossName", "Recipe", "RunRecipe"]

LossName = Literal["dice", "ce", "dice+ce"]
LOSS_NAMES: tuple[LossName, ...] = ("dice", "ce", "dice+ce")
BnStats = Literal["running", "recompute"]
"""How eval-mode BatchNorm statistics are obtained: ``"running"``, the layers' running
averages (PyTorch's default), or ``"recompute"``, re-estimated on fixed training crops before
every validation and test (:mod:`lale.training.bn_stats`)."""
BN_STATS: tuple[BnStats, ...] = ("running", "recompute")


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings. Defaults are the ARAS400k baseline recipe (docs/design.md#recipe).

    Attributes:
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (AdamW's default 0.01).
        batch_size: Samples per step and device.
        epochs: Maximum epochs.
        grad_clip: Gradient-norm clipping.
        loss: ``"dice"``, ``"ce"`` or ``"dice+ce"``.
        class_weights: Per-class loss weights, or ``None``.
        plateau_patience: ReduceLROnPlateau patience (epochs) on validation macro-F1.
        plateau_factor: ReduceLROnPlateau factor.
        early_stopping: Early-stopping patience (epochs) on validation macro-F1; 0 disables.
        crop_size: Side of the random training crops.
        augment: Augmentation probabilities and strengths.
        samples_per_epoch: Training crops per epoch; ``None``: one per training image.
        bn_stats: Eval-mode BatchNorm statistics, see :data:`BnStats` (no effect on models
            without BatchNorm, such as LALE).
        bn_crops: Training crops the ``"recompute"`` statistics are estimated on.
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 24
    epochs: int = 20
    grad_clip: float = 1.0
    loss: LossName = "dice"
    class_weights: tuple[float, ...] | None = None
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    early_stopping: int = 5
    crop_size: int = 256
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    samples_per_epoch: int | None = None
    bn_stats: BnStats = "running"
    bn_crops: int = 128

    def __post_init__(self) -> None:
        if self.bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {BN_STATS}, got {self.bn_stats!r}")
        if self.bn_crops < 2:  # a batch of one cannot give BatchNorm statistics
            raise ValueError(f"bn_crops must be at least 2, got {self.bn_crops}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.class_weights is not None:
            d["class_weights"] = list(self.class_weights)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; missing keys take their defaults.

        Raises:
            TypeError: A key that is not a field of this class.
        """
        d = dict(data)
        if d.get("class_weights") is not None:
            d["class_weights"] = tuple(d["class_weights"])
        augment = d.get("augment", {})
        if not isinstance(augment, AugmentConfig):
            d["augment"] = AugmentConfig(**augment)
        return cls(**d)


@dataclass(frozen=True)
class RunRecipe(Recipe):
    """A run's recipe as ``config.json`` records it: the :class:`Recipe` and how it was run.

    Stored as one flat JSON object (the recipe's keys, then these). Keys this version does not
    know are ignored when reading, so configs written by other versions still load.

    Attributes:
        data: Dataset root the run was trained on (``lale evaluate`` and quantisation default
            to it), or ``None``.
        init: Run directory or ``.safetensors`` file whose weights initialised this one, or
            ``None``.
        pretrained: The encoder started from its ImageNet weights (a record only: a run is
            rebuilt from its own ``model.safetensors``, never from the hub).
        checkpoint_every: Steps between saves of the resumable state.
        strict: Mask colours outside the schema were errors instead of ignored pixels.
        skip_bad_pairs: Pairs whose files failed their checks were left out (listed in the
            run's ``skipped_pairs.json``) instead of stopping the run.
    """

    data: str | None = None
    init: str | None = None
    pretrained: bool = False
    checkpoint_every: int = 50
    strict: bool = False
    skip_bad_pairs: bool = False

    @classmethod
    def of(cls, recipe: Recipe, **run: Any) -> RunRecipe:
        """``recipe`` with the run fields ``run`` (``data``, ``init``, ...)."""
        base = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe)}
        return cls(**base, **run)

    @property
    def optimisation(self) -> Recipe:
        """The :class:`Recipe` part alone."""
        return Recipe(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Recipe)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecipe:
        """Inverse of :meth:`to_dict`; missing keys take their defaults, unknown ones are ignored.

        Raises:
            TypeError, ValueError: A value of the wrong kind.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        recipe = super().from_dict({k: v for k, v in data.items() if k in known})
        assert isinstance(recipe, RunRecipe)
        return recipe
