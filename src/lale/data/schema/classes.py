"""Class schemas: class names, how masks encode them, the ignore label and the image format.

Masks map to class indices by colour or by value, through lookup tables; colours or values that
are not a class become ``ignore_index`` and are counted, never folded into class 0. Built in:
:data:`ARAS400K` (the default) and :data:`WORLDCOVER`; other schemes are JSON or YAML files read
by :func:`load_schema`, in the format of docs/design.md#class-schemas; :func:`resolve_schema`
picks the one a dataset folder declares.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lale.data.schema import lut
from lale.data.schema.image_spec import IMAGENET_MEAN, IMAGENET_STD, ImageSpec
from lale.errors import DataError, UnavailableError, UsageError
from lale.run_layout import DATASET_SCHEMA

__all__ = [
    "ARAS400K",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RGB",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "WORLDCOVER",
    "ClassSchema",
    "ImageSpec",
    "load_schema",
    "resolve_schema",
    "save_schema",
]

RGB = tuple[int, int, int]
SCHEMA_VERSION = 1
"""Version of the ``to_dict()`` format; bumped on incompatible changes."""
_FORMAT = "lale.class_schema"
# Display colours for schemas without mask colours (matplotlib's tab20, cycled).
_TAB20 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
"""Display colours for schemas without mask colours (matplotlib's tab20, cycled)."""


def _rgb(c: Any) -> RGB:
    """An (R, G, B) tuple from ``[r, g, b]`` or ``"#rrggbb"``."""
    if isinstance(c, str):
        h = c.removeprefix("#")
        if len(h) != 6:
            raise ValueError(f"colour {c!r} is not '#rrggbb'")
        c = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    t = tuple(int(v) for v in c)
    if len(t) != 3 or not all(0 <= v <= 255 for v in t):
        raise ValueError(f"colour {c!r} is not three values in 0..255")
    return (t[0], t[1], t[2])


@dataclass(frozen=True)
class ClassSchema:
    """A segmentation class scheme and the image format it comes with.

    Sequences given as lists are stored as tuples; after construction ``values`` and
    ``display_colors`` are always filled in.

    Attributes:
        names: Class names; the position is the class index.
        colors: Mask colour (R, G, B) of each class, for colour and palette masks;
            empty if the masks are index images only.
        ignore_index: Label for pixels of no class (``num_classes`` ≤ it ≤ 255).
        values: Mask value of each class in index masks; default: the class index.
        display_colors: Colours to draw each class with; default: ``colors`` or tab20.
        ignore_values: Index-mask values meaning "no label" (e.g. no-data); not counted as unknown.
        ignore_colors: Mask colours meaning "no label"; not counted as unknown.
        image: How the images are read, scaled and normalised.
        name: Short name, used in messages.
    """

    names: tuple[str, ...]
    colors: tuple[RGB, ...] = ()
    ignore_index: int = 255
    values: tuple[int, ...] = ()
    display_colors: tuple[RGB, ...] = ()
    ignore_values: tuple[int, ...] = ()
    ignore_colors: tuple[RGB, ...] = ()
    image: ImageSpec = field(default_factory=ImageSpec)
    name: str = "custom"

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        n = len(self.names)
        put("names", tuple(str(s) for s in self.names))
        put("colors", tuple(_rgb(c) for c in self.colors))
        put("values", tuple(int(v) for v in self.values) or tuple(range(n)))
        put("ignore_values", tuple(int(v) for v in self.ignore_values))
        put("ignore_colors", tuple(_rgb(c) for c in self.ignore_colors))
        display = tuple(_rgb(c) for c in self.display_colors)
        tab20 = tuple(_rgb(_TAB20[i % 20]) for i in range(n))
        put("display_colors", display or self.colors or tab20)
        if n == 0 or len(set(self.names)) != n:
            raise ValueError(f"class names must be non-empty and distinct, got {self.names}")
        for key in ("colors", "values", "display_colors"):
            seq = getattr(self, key)
            if len(seq) != n and (seq or key != "colors"):
                raise ValueError(f"{n} names but {len(seq)} {key.replace('_', ' ')}")
        if len(set(self.colors)) != len(self.colors):
            raise ValueError("class colours must be distinct")
        if len(set(self.values)) != n or min(self.values) < 0:
            raise ValueError(f"class values must be distinct and non-negative: {self.values}")
        if set(self.ignore_values) & set(self.values):
            raise ValueError("ignore_values overlap the class values")
        if set(self.ignore_colors) & set(self.colors):
            raise ValueError("ignore_colors overlap the class colours")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < n:
            raise ValueError(f"ignore_index {self.ignore_index} collides with a class index")
        if not isinstance(self.image, ImageSpec):
            raise TypeError(f"image must be an ImageSpec, got {type(self.image).__name__}")

    @property
    def num_classes(self) -> int:
        """Number of classes (the ignore index excluded)."""
        return len(self.names)

    @property
    def has_colors(self) -> bool:
        """Whether colour masks can be decoded (the schema has mask colours)."""
        return bool(self.colors)

    def palette(self) -> NDArray[np.uint8]:
        """The mask colours as a ``num_classes × 3`` uint8 array (display colours if none)."""
        return np.asarray(self.colors or self.display_colors, dtype=np.uint8).reshape(-1, 3)

    def with_normalization(self, mean: Sequence[float], std: Sequence[float]) -> ClassSchema:
        """A copy whose image spec stores these per-channel statistics."""
        image = dataclasses.replace(self.image, mean=tuple(mean), std=tuple(std))
        return dataclasses.replace(self, image=image)

    def labels_to_rgb(self, labels: NDArray[np.integer]) -> NDArray[np.uint8]:
        """Colour mask (``H×W×3`` uint8) of a label map; ignore pixels become black.

        Uses the mask colours, so it inverts :meth:`rgb_to_labels`; the display colours where
        the schema has none.
        """
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = self.palette()
        idx = np.asarray(labels)
        if idx.dtype != np.uint8:
            idx = np.where((idx >= 0) & (idx < 256), idx, self.ignore_index).astype(np.uint8)
        return np.take(lut, idx, axis=0)

    def rgb_to_labels(self, mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Label map (``H×W`` uint8) of a colour mask; unknown colours become ``ignore_index``."""
        return self.decode_colors(mask)[0]

    def decode_colors(self, mask: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
        """Labels of an ``H×W×3`` (or ×4, alpha ignored) colour mask and its unknown-pixel count.

        Raises:
            ValueError: The schema has no mask colours.
        """
        if not self.colors:
            raise ValueError(f"schema {self.name!r} has no mask colours; masks must be indices")
        return lut.decode_colors(mask, self.colors, self.ignore_colors, self.ignore_index)

    def decode_palette(
        self, index: NDArray[np.uint8], palette: NDArray[np.uint8]
    ) -> tuple[NDArray[np.uint8], int]:
        """Labels of a palette mask (indices into ``palette``, ``K×3``) and its unknown count.

        Decoded by colour when the schema has mask colours, else the indices are mask values.
        """
        if not self.colors:
            return self.decode_values(index)
        return lut.decode_palette(
            index, palette, self.colors, self.ignore_colors, self.ignore_index
        )

    def decode_values(self, mask: NDArray[Any]) -> tuple[NDArray[np.uint8], int]:
        """Labels of a single-band index mask (any numeric type) and its unknown-pixel count."""
        return lut.decode_values(mask, self.values, self.ignore_values, self.ignore_index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, versioned; inverse of :meth:`from_dict`."""
        classes: list[dict[str, Any]] = []
        for i, name in enumerate(self.names):
            entry: dict[str, Any] = {"name": name, "value": self.values[i]}
            if self.colors:
                entry["color"] = list(self.colors[i])
            entry["display_color"] = list(self.display_colors[i])
            classes.append(entry)
        return {
            "format": _FORMAT,
            "version": SCHEMA_VERSION,
            "name": self.name,
            "classes": classes,
            "ignore_index": self.ignore_index,
            "ignore_values": list(self.ignore_values),
            "ignore_colors": [list(c) for c in self.ignore_colors],
            "image": self.image.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassSchema:
        """Build a schema from :meth:`to_dict` output or a schema file's content.

        Raises:
            ValueError: Unknown keys, a newer format version, or an invalid schema.
        """
        top = {"format", "version", "name", "classes", "ignore_index", "ignore_values"}
        if extra := sorted(set(data) - top - {"ignore_colors", "image"}):
            raise ValueError(f"unknown schema keys {extra}")
        if data.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"not a class schema: format {data.get('format')!r}")
        version = int(data.get("version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise ValueError(f"schema version {version} is newer than this lale reads")
        classes = data.get("classes")
        if not isinstance(classes, Sequence) or not classes:
            raise ValueError("'classes' must be a non-empty list")
        entries = [{"name": c} if isinstance(c, str) else dict(c) for c in classes]
        for e in entries:
            if extra := sorted(set(e) - {"name", "value", "color", "display_color"}):
                raise ValueError(f"unknown keys {extra} in class {e.get('name')!r}")
            if "name" not in e:
                raise ValueError(f"class entry {e} has no name")

        def column(key: str) -> tuple[Any, ...]:
            have = [key in e for e in entries]
            if any(have) and not all(have):
                raise ValueError(f"give {key!r} for every class or for none")
            return tuple(e[key] for e in entries) if all(have) else ()

        return cls(
            names=tuple(e["name"] for e in entries),
            colors=column("color"),
            ignore_index=int(data.get("ignore_index", 255)),
            values=column("value"),
            display_colors=column("display_color"),
            ignore_values=tuple(data.get("ignore_values", ())),
            ignore_colors=tuple(data.get("ignore_colors", ())),
            image=ImageSpec.from_dict(data.get("image", {})),
            name=str(data.get("name", "custom")),
        )


ARAS400K = ClassSchema(
    names=("Tree", "Shrub", "Grass", "Crop", "Built-up", "Barren", "Water"),
    colors=(
        (0, 100, 0),
        (255, 182, 193),
        (154, 205, 50),
        (255, 215, 0),
        (139, 69, 19),
        (211, 211, 211),
        (0, 0, 255),
    ),
    ignore_index=255,
    name="aras400k",
)
"""The ARAS400k classes (ESA WorldCover 2021 remapped, docs/design.md#classes); the default."""

_WORLDCOVER_COLORS = (
    "#006400", "#ffbb22", "#ffff4c", "#f096ff", "#fa0000", "#b4b4b4",
    "#f0f0f0", "#0064c8", "#0096a0", "#00cf75", "#fae6a0",
)  # fmt: skip

WORLDCOVER = ClassSchema(
    names=(
        "Tree cover",
        "Shrubland",
        "Grassland",
        "Cropland",
        "Built-up",
        "Bare / sparse vegetation",
        "Snow and ice",
        "Permanent water bodies",
        "Herbaceous wetland",
        "Mangroves",
        "Moss and lichen",
    ),
    colors=tuple(_rgb(h) for h in _WORLDCOVER_COLORS),
    values=(10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100),
    ignore_values=(0,),
    name="worldcover",
)
"""ESA WorldCover 2021: native codes 10…100, the official palette; code 0 (no data) is ignored."""

SCHEMAS: dict[str, ClassSchema] = {"aras400k": ARAS400K, "worldcover": WORLDCOVER}
"""Built-in schemas by name."""


def load_schema(source: str | Path | ClassSchema | Mapping[str, Any] = "aras400k") -> ClassSchema:
    """A schema from a built-in name, a ``.json``/``.yaml`` file, a dictionary or a schema.

    Raises:
        UsageError: ``source`` is neither a built-in name nor an existing file.
        DataError: The file cannot be read or does not hold a valid schema (names the file).
        UnavailableError: A YAML file without PyYAML installed.
    """
    if isinstance(source, ClassSchema):
        return source
    if isinstance(source, Mapping):
        return ClassSchema.from_dict(source)
    if isinstance(source, str) and source.lower() in SCHEMAS:
        return SCHEMAS[source.lower()]
    path = Path(source)
    if not path.is_file():
        raise UsageError(
            f"unknown schema {str(source)!r}: not a built-in ({', '.join(SCHEMAS)}) "
            "and no such file"
        )
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml  # optional dependency, only for YAML schema files
            except ImportError as err:
                raise UnavailableError(f"reading {path} needs PyYAML: pip install pyyaml") from err
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(str(err)) from err
        else:
            data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("expected a JSON object")
        return ClassSchema.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise DataError(path, f"invalid class schema ({err})") from err


def resolve_schema(data: Path, schema: str | Path | None) -> ClassSchema:
    """The schema named, else ``DATA/schema.json``, else ARAS400k."""
    if schema is not None:
        return load_schema(schema)
    local = data / DATASET_SCHEMA
    return load_schema(local if local.is_file() else "aras400k")


def save_schema(schema: ClassSchema, path: str | Path) -> None:
    """Write ``schema.to_dict()`` as indented JSON to ``path``."""
    Path(path).write_text(json.dumps(schema.to_dict(), indent=1) + "\n", encoding="utf-8")
