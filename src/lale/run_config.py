"""A run's ``config.json``: :class:`RunConfig`, plain data that rebuilds a model and feeds it.

Torch-free on purpose: scene inference from an exported ONNX file reads the config embedded in
the file without PyTorch. :mod:`lale.runs` re-exports everything here and adds the weights.
The whole run directory: docs/design.md#run-directories.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lale import run_layout
from lale.atomic import write_json_atomic
from lale.errors import RunError
from lale.recipe import Recipe, RunRecipe

if TYPE_CHECKING:
    from lale.data.schema import ClassSchema
    from lale.data.schema.image_spec import ImageSpec

__all__ = [
    "CONFIG_NAME",
    "CONFIG_VERSION",
    "RunConfig",
    "RunError",
    "load_config",
    "save_config",
]

CONFIG_NAME = run_layout.CONFIG
CONFIG_VERSION = 1
"""Version of the ``config.json`` format; a newer file is refused rather than misread."""
_FORMAT = "lale.run"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    from lale.profiling.environment import package_versions

    versions = package_versions()
    for dist in ("lightning", "torchmetrics"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _jsonable(value: Any) -> Any:
    """Tuples as lists, recursively, so a config compares equal to its JSON round trip."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class RunConfig:
    """Everything needed to rebuild a trained model and feed it the right input.

    Attributes:
        model: Registry name, e.g. ``"lale_t"`` or ``"upernet:efficientnet-b0"``.
        num_classes: Output classes.
        in_channels: Input bands.
        model_kwargs: The builder's full keyword arguments (``registry.model_kwargs`` output),
            so the run does not depend on later changes of a variant's defaults.
        class_schema: The class schema as ``ClassSchema.to_dict()``.
        bands: 1-based bands of the source images fed to the model, in order; ``None`` = all.
        band_names: Optional names of the input channels, in order.
        mean: Per-channel normalisation mean (after scaling samples to 0..1 or reflectance).
        std: Per-channel normalisation standard deviation.
        input_size: Training patch size ``[height, width]``.
        scaling: How the training patches were scaled to 8 bits (``prepare.json``):
            ``"truecolor"`` (ESA's rule; configs without the key) or ``"aras400k"`` (each patch
            by its own maximum), which prediction then applies to every window.
        recipe: Training recipe (optimiser, lr, batch, epochs, loss, class weights, …) and how
            the run was set up (dataset, init, checkpointing); a mapping is read with
            :meth:`RunRecipe.from_dict`.
        seed: Random seed of the run.
        versions: Library versions that produced the run.
        created: ISO-8601 UTC time the config was made.
    """

    model: str
    num_classes: int
    in_channels: int
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    class_schema: dict[str, Any] = field(default_factory=dict)
    bands: list[int] | None = None
    band_names: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    input_size: list[int] | None = None
    scaling: str = "truecolor"
    recipe: RunRecipe = field(default_factory=RunRecipe)
    seed: int | None = None
    versions: dict[str, str | None] = field(default_factory=_versions)
    created: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a registry name, got {self.model!r}")
        for key in ("num_classes", "in_channels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if isinstance(self.recipe, Mapping):
            self.recipe = RunRecipe.from_dict(self.recipe)
        elif isinstance(self.recipe, Recipe) and not isinstance(self.recipe, RunRecipe):
            self.recipe = RunRecipe.of(self.recipe)
        if not isinstance(self.recipe, RunRecipe):
            raise ValueError(f"recipe must be a RunRecipe or a JSON object, got {self.recipe!r}")
        for key in ("model_kwargs", "class_schema", "versions"):
            if not isinstance(getattr(self, key), Mapping):
                raise ValueError(f"{key} must be a JSON object, got {getattr(self, key)!r}")
        for key in ("mean", "std"):
            stat = getattr(self, key)
            if stat is not None and len(stat) != self.in_channels:
                raise ValueError(f"{key} has {len(stat)} values for {self.in_channels} channels")
        if self.scaling not in ("truecolor", "aras400k"):
            raise ValueError(f"scaling must be 'truecolor' or 'aras400k', got {self.scaling!r}")
        if self.input_size is not None and len(self.input_size) != 2:
            raise ValueError(f"input_size must be [height, width], got {self.input_size}")
        # Normalise to the JSON shapes, so a config equals its reloaded copy.
        for f in dataclasses.fields(self):
            if f.name != "recipe":
                setattr(self, f.name, _jsonable(getattr(self, f.name)))

    @classmethod
    def from_schema(
        cls,
        model: str,
        schema: ClassSchema,
        *,
        model_overrides: Mapping[str, Any] | None = None,
        input_size: Sequence[int] | None = None,
        recipe: Recipe | Mapping[str, Any] | None = None,
        seed: int | None = None,
        scaling: str = "truecolor",
    ) -> RunConfig:
        """A config whose classes, bands and normalisation come from a class schema.

        Args:
            model: Registry name.
            schema: The dataset's :class:`~lale.data.schema.ClassSchema`.
            model_overrides: Keyword arguments over the variant's defaults; the resolved full
                set is stored.
            input_size: Training patch size ``(height, width)``.
            recipe: Training recipe to record (a :class:`Recipe` gets the run defaults).
            seed: Random seed to record.
            scaling: The 8-bit rule of the training data (``prepare.json``).

        Raises:
            UnknownModelError: ``model`` is not registered.
            ValueError: The schema has no normalisation for its band count.
        """
        from lale.models.registry import model_kwargs

        image = schema.image
        mean, std = image.normalization()
        return cls(
            model=model,
            num_classes=schema.num_classes,
            in_channels=image.channels,
            model_kwargs=model_kwargs(model, **dict(model_overrides or {})),
            class_schema=schema.to_dict(),
            bands=None if image.bands is None else list(image.bands),
            band_names=None if image.band_names is None else list(image.band_names),
            mean=list(mean),
            std=list(std),
            input_size=None if input_size is None else list(input_size),
            scaling=scaling,
            recipe=RunRecipe() if recipe is None else recipe,  # type: ignore[arg-type]
            seed=seed,
        )

    def schema(self) -> ClassSchema:
        """The stored class schema as a :class:`~lale.data.schema.ClassSchema`."""
        from lale.data.schema import ClassSchema

        return ClassSchema.from_dict(self.class_schema)

    def image_spec(self) -> ImageSpec:
        """The schema's image spec with this run's normalisation (``mean``/``std``, if stored).

        What the model was trained on: feed it ``normalize_input(raw, config.image_spec())``.
        """
        image = self.schema().image
        if self.mean is None or self.std is None:
            return image
        return dataclasses.replace(image, mean=tuple(self.mean), std=tuple(self.std))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with the format name and version first."""
        body = dataclasses.asdict(self)
        body["recipe"] = self.recipe.to_dict()  # flat, class weights as a list
        return {"format": _FORMAT, "version": CONFIG_VERSION, **body}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: Not a run config, a newer version, unknown or missing keys, bad values.
        """
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a lale run config (format {data.get('format')!r})")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"invalid config version {version!r}")
        if version > CONFIG_VERSION:
            raise ValueError(
                f"config version {version} is newer than this lale reads ({CONFIG_VERSION}); "
                "upgrade lale"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        body = {k: v for k, v in data.items() if k not in ("format", "version")}
        if extra := sorted(set(body) - set(fields)):
            raise ValueError(f"unknown config keys {extra}")
        required = [
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing := [k for k in required if k not in body]:
            raise ValueError(f"missing config keys {missing}")
        return cls(**body)


def save_config(path: str | Path, config: RunConfig) -> None:
    """Write ``config`` as JSON to ``path``, atomically."""
    write_json_atomic(path, config.to_dict())


def load_config(path: str | Path) -> RunConfig:
    """Read a ``config.json`` (plain JSON; nothing is executed or unpickled).

    Raises:
        RunError: The file is missing, not JSON, or not a valid config of a known version.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(path, "config file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(path, f"cannot read ({err})") from err
    except json.JSONDecodeError as err:
        raise RunError(path, f"invalid JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunError(path, f"expected a JSON object, got {type(data).__name__}")
    try:
        config = RunConfig.from_dict(data)
        config.image_spec()  # the stored schema and normalisation must be usable too
    except (ValueError, TypeError, KeyError) as err:
        raise RunError(path, str(err)) from err
    return config
