"""What a federation is given: :class:`FederateOptions` (the server's) and :class:`ClientSpec`.

The server sends the :class:`ClientSpec` with every message, so a site needs nothing but its
data: the model, recipe, class schema and local budget come from the federation.

The options also travel as a Flower run config (flat TOML values, see :func:`to_run_config`):
a Flower App written by ``lale federate --write-app`` holds them, and ``flwr run`` may override
single keys (``--run-config "rounds=20"``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from lale.errors import UsageError
from lale.recipe import Recipe

__all__ = ["STRATEGIES", "ClientSpec", "FederateOptions", "StrategyName", "from_run_config"]

StrategyName = Literal["fedavg", "fedprox", "fedadam"]
STRATEGIES: tuple[StrategyName, ...] = ("fedavg", "fedprox", "fedadam")


@dataclass(frozen=True)
class ClientSpec:
    """What every site trains and scores with (sent by the server in each message).

    Attributes:
        model: Registered model name.
        model_kwargs: Overrides of the variant's defaults.
        schema: The federation's class schema (``ClassSchema.to_dict()``).
        recipe: Optimisation settings (``Recipe.to_dict()``); lr, batch, crop, loss and
            augmentation apply to each local training.
        seed: Federation seed; a site's data order and augmentation in round ``r`` depend on
            ``(seed, r, site)``.
        local_steps: Optimiser steps per site and round (``None``: ``local_epochs``).
        local_epochs: Passes over the site's training patches per round.
        fedbn: Keep every BatchNorm layer local (FedBN): its weights and statistics never
            leave the site, and each site scores with its own.
        accelerator: Lightning accelerator of the local training.
        precision: Lightning precision; ``None``: bf16-mixed on GPU, else 32-true.
        max_unknown: Largest share of mask pixels outside the schema a site's split may have.
        strict: Mask colours outside the schema are errors.
    """

    model: str
    schema: dict[str, Any]
    recipe: dict[str, Any]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    local_steps: int | None = 10
    local_epochs: int | None = None
    fedbn: bool = False
    accelerator: str = "auto"
    precision: str | None = None
    max_unknown: float = 0.5
    strict: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClientSpec:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def recipe_object(self) -> Recipe:
        return Recipe.from_dict(self.recipe)


@dataclass(frozen=True)
class FederateOptions:
    """One federation, as the server runs it.

    Attributes:
        out: Run directory (an ordinary one: ``lale evaluate``, ``predict`` and ``export``
            take it) with ``federation.json``, the figures and ``federation/`` (the
            per-round state a killed federation resumes from).
        model: Registered model name.
        model_kwargs: Overrides of the variant's defaults.
        schema: Class schema: a name, a file on the server, or the schema itself (a
            ``ClassSchema.to_dict()``); ``None``: the built-in ARAS400k schema. ``lale
            federate --sites`` passes the sites' own (checked to be one).
        recipe: Local optimisation settings.
        rounds: Federated rounds.
        local_steps: Optimiser steps per site and round (``None``: ``local_epochs``).
        local_epochs: Passes over each site's training patches per round.
        strategy: ``fedavg``, ``fedprox`` (its proximal term ``mu/2·‖w − w_global‖²`` is
            added to each site's loss) or ``fedadam`` (server-side Adam on the averaged
            update).
        mu: FedProx's proximal weight.
        server_lr: FedAdam's server learning rate (eta).
        fedbn: Keep BatchNorm layers local (see :class:`ClientSpec`).
        seed: Federation seed (initial model, data order, augmentation).
        round_timeout: Seconds the server waits for a round's replies; a site that has not
            answered by then is left out of that round (and said so).
        min_sites: Fewest sites a round may aggregate; below it the federation stops (its
            state kept for ``--resume``).
        accelerator: Lightning accelerator of the local training.
        precision: Lightning precision.
        max_unknown: Largest share of unknown mask pixels a site's split may have.
        strict: Unknown mask colours are errors.
    """

    out: Path
    model: str = "lale_s1"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    schema: str | dict[str, Any] | None = None
    recipe: Recipe = field(default_factory=Recipe)
    rounds: int = 10
    local_steps: int | None = 10
    local_epochs: int | None = None
    strategy: StrategyName = "fedavg"
    mu: float = 0.01
    server_lr: float = 0.01
    fedbn: bool = False
    seed: int = 0
    round_timeout: float = 3600.0
    min_sites: int = 1
    accelerator: str = "auto"
    precision: str | None = None
    max_unknown: float = 0.5
    strict: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        if (self.local_steps is None) == (self.local_epochs is None):
            raise UsageError("give one of --local-steps and --local-epochs")
        if self.rounds < 1:
            raise UsageError(f"--rounds must be at least 1, got {self.rounds}")
        if self.strategy == "fedprox" and self.mu <= 0:
            raise UsageError(f"--strategy fedprox needs --mu > 0, got {self.mu}")

    def client_spec(self, schema: dict[str, Any]) -> ClientSpec:
        return ClientSpec(
            model=self.model,
            schema=schema,
            recipe=self.recipe.to_dict(),
            model_kwargs=dict(self.model_kwargs),
            seed=self.seed,
            local_steps=self.local_steps,
            local_epochs=self.local_epochs,
            fedbn=self.fedbn,
            accelerator=self.accelerator,
            precision=self.precision,
            max_unknown=self.max_unknown,
            strict=self.strict,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``federation/options.json``)."""
        d = asdict(self)
        d["out"], d["recipe"] = str(self.out), self.recipe.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FederateOptions:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["out"] = Path(values["out"])
        values["recipe"] = Recipe.from_dict(values.get("recipe", {}))
        return cls(**values)


_FLAT = {
    "out": str,
    "model": str,
    "schema": str,
    "rounds": int,
    "local-steps": int,
    "local-epochs": int,
    "strategy": str,
    "mu": float,
    "server-lr": float,
    "fedbn": bool,
    "seed": int,
    "round-timeout": float,
    "min-sites": int,
    "accelerator": str,
    "precision": str,
    "max-unknown": float,
    "strict": bool,
}
"""Run-config keys (TOML: no ``None``, so 0 or "" means unset) and their types."""


def to_run_config(options: FederateOptions) -> dict[str, Any]:
    """The options as a flat Flower run config (model options and recipe as JSON strings)."""
    d = options.to_dict()
    out: dict[str, Any] = {}
    for key, kind in _FLAT.items():
        value = d[key.replace("-", "_")]
        out[key] = (0 if kind in (int, float) else "") if value is None else value
    if isinstance(options.schema, dict):
        out["schema"] = json.dumps(options.schema, sort_keys=True)
    out["model-kwargs"] = json.dumps(options.model_kwargs, sort_keys=True)
    out["recipe"] = json.dumps(options.recipe.to_dict(), sort_keys=True)
    return out


def from_run_config(config: dict[str, Any]) -> FederateOptions:
    """Inverse of :func:`to_run_config` (a Flower App's run config, overrides included).

    Raises:
        UsageError: A key is missing, or a value has the wrong type.
    """
    values: dict[str, Any] = {}
    for key, kind in _FLAT.items():
        if key not in config:
            raise UsageError(f"Flower run config: no {key!r} (write the app with lale federate)")
        value = config[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind):
            raise UsageError(f"Flower run config: {key} must be {kind.__name__}, got {value!r}")
        unset = value in (0, "") and key in ("local-steps", "local-epochs", "schema", "precision")
        values[key.replace("-", "_")] = None if unset else value
    schema = values.get("schema")
    try:
        if isinstance(schema, str) and schema.lstrip().startswith("{"):
            values["schema"] = json.loads(schema)
        values["model_kwargs"] = json.loads(str(config.get("model-kwargs", "{}")))
        recipe = Recipe.from_dict(json.loads(str(config.get("recipe", "{}"))))
    except (ValueError, TypeError) as err:
        raise UsageError(f"Flower run config: schema, model-kwargs or recipe: {err}") from None
    values["out"] = Path(values["out"])
    return replace(FederateOptions(out=values["out"], recipe=recipe), **values)
