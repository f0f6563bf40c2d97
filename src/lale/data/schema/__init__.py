"""Class schemas: the classes, how masks encode them (lookup tables) and the image format.

- :mod:`lale.data.schema.classes` — :class:`ClassSchema`, the built-in schemas, loading and
  saving;
- :mod:`lale.data.schema.image_spec` — :class:`ImageSpec`: bands, sample type, scaling and
  normalisation;
- :mod:`lale.data.schema.lut` — masks decoded to class indices through lookup tables;
- :mod:`lale.data.schema.aras` — the ARAS400k class indices.

The lowest part of :mod:`lale.data`: it imports no other part of it. The names of
:mod:`~lale.data.schema.classes` are importable from here.
"""

from __future__ import annotations

from lale.data.schema.classes import (
    ARAS400K,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RGB,
    SCHEMA_VERSION,
    SCHEMAS,
    WORLDCOVER,
    ClassSchema,
    ImageSpec,
    load_schema,
    resolve_schema,
    save_schema,
)

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
