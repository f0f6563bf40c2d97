"""Tests for class schemas (lale.data.schema) and mask decoding through lookup tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lale.data.schema import (
    ARAS400K,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SCHEMA_VERSION,
    WORLDCOVER,
    ClassSchema,
    ImageSpec,
    load_schema,
    save_schema,
)
from lale.data.schema.aras import ARAS400K as ARAS_REEXPORT
from lale.data.schema.aras import ClassSchema as ClassSchemaReexport
from lale.errors import DataError

CUSTOM = ClassSchema(
    names=("dryout", "forest", "village", "water"),
    values=(1, 2, 3, 4),
    ignore_values=(0,),
    display_colors=((211, 211, 211), (0, 100, 0), (139, 69, 19), (0, 0, 255)),
    image=ImageSpec(
        band_count=12,
        bands=(4, 3, 2),
        band_names=("B4", "B3", "B2"),
        dtype="float32",
        scale=1.0,
        mean=(0.1, 0.2, 0.3),
        std=(0.01, 0.02, 0.03),
    ),
    name="amazon",
)


def _reference_decode(rgb: np.ndarray, schema: ClassSchema) -> np.ndarray:
    """Slow per-class loop, the behaviour the lookup table must reproduce."""
    out = np.full(rgb.shape[:2], schema.ignore_index, np.uint8)
    for i, c in enumerate(schema.colors):
        out[(rgb[..., :3] == c).all(axis=-1)] = i
    return out


def test_aras400k_is_the_default_and_still_importable_from_aras() -> None:
    assert ARAS_REEXPORT is ARAS400K and ClassSchemaReexport is ClassSchema
    assert load_schema() is ARAS400K
    assert ARAS400K.name == "aras400k" and ARAS400K.num_classes == 7
    assert ARAS400K.values == tuple(range(7)) and ARAS400K.display_colors == ARAS400K.colors
    assert ARAS400K.colors[0] == (0, 100, 0) and ARAS400K.colors[6] == (0, 0, 255)
    assert ARAS400K.ignore_index == 255 and ARAS400K.image == ImageSpec()


def test_worldcover_native_codes_and_palette() -> None:
    assert WORLDCOVER.values == (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
    assert WORLDCOVER.colors[0] == (0, 100, 0) and WORLDCOVER.colors[7] == (0, 100, 200)
    assert WORLDCOVER.colors[-1] == (250, 230, 160) and WORLDCOVER.ignore_values == (0,)
    codes = np.array([[10, 95, 0, 7], [100, 80, 255, 30]], np.uint8)
    labels, unknown = WORLDCOVER.decode_values(codes)
    assert labels.tolist() == [[0, 9, 255, 255], [10, 7, 255, 2]]
    assert unknown == 2  # 7 and 255; the no-data 0 is declared, not unknown
    assert load_schema("WorldCover") is WORLDCOVER


@pytest.mark.parametrize("schema", [ARAS400K, WORLDCOVER, CUSTOM], ids=lambda s: s.name)
def test_json_round_trip(schema: ClassSchema, tmp_path: Path) -> None:
    data = json.loads(json.dumps(schema.to_dict()))
    assert data["version"] == SCHEMA_VERSION and data["format"] == "lale.class_schema"
    assert ClassSchema.from_dict(data) == schema
    save_schema(schema, tmp_path / "s.json")
    assert load_schema(tmp_path / "s.json") == schema
    assert load_schema(str(tmp_path / "s.json")) == schema


def test_minimal_file_hex_colours_and_yaml(tmp_path: Path) -> None:
    minimal = {"classes": [{"name": "a", "color": "#ff0000"}, {"name": "b", "color": [0, 0, 9]}]}
    schema = ClassSchema.from_dict(minimal)
    assert schema.colors == ((255, 0, 0), (0, 0, 9)) and schema.values == (0, 1)
    assert ClassSchema.from_dict({"classes": ["x", "y"]}).colors == ()
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(CUSTOM.to_dict()))
    assert load_schema(path) == CUSTOM


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"classes": ["a"], "colour": 1}, "unknown schema keys"),
        ({"classes": [{"name": "a", "valeu": 1}]}, "unknown keys"),
        ({"classes": ["a"], "version": SCHEMA_VERSION + 1}, "newer"),
        ({"classes": ["a"], "format": "other"}, "not a class schema"),
        ({"classes": []}, "non-empty"),
        ({"classes": [{"name": "a", "value": 1}, {"name": "b"}]}, "every class"),
        ({"classes": ["a"], "image": {"bands": [4]}}, "1-based"),
        ({"classes": ["a"], "image": {"band": 3}}, "unknown image keys"),
    ],
)
def test_from_dict_rejects_bad_input(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClassSchema.from_dict(data)


def test_invalid_schemas() -> None:
    with pytest.raises(ValueError, match="distinct"):
        ClassSchema(("a", "b"), ((1, 2, 3), (1, 2, 3)))
    with pytest.raises(ValueError, match="collides"):
        ClassSchema(("a", "b"), ignore_index=1)
    with pytest.raises(ValueError, match="2 names but 1 colors"):
        ClassSchema(("a", "b"), ((1, 2, 3),))
    with pytest.raises(ValueError, match="overlap"):
        ClassSchema(("a",), values=(5,), ignore_values=(5,))
    with pytest.raises(ValueError, match="channels"):
        ImageSpec(band_count=4, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(ValueError, match="scale"):
        ImageSpec(scale=0)


def test_load_schema_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aras400k, worldcover"):
        load_schema("no-such-schema")
    bad = tmp_path / "bad.json"
    bad.write_text('{"classes": [')
    with pytest.raises(DataError, match=r"bad\.json") as info:
        load_schema(bad)
    assert "\n" not in str(info.value)


def test_normalization_defaults_and_stored_stats() -> None:
    assert ImageSpec().normalization() == (IMAGENET_MEAN, IMAGENET_STD)
    assert CUSTOM.image.channels == 3 and CUSTOM.image.normalization()[0] == (0.1, 0.2, 0.3)
    twelve = ImageSpec(band_count=12, dtype="float32", scale=1)
    with pytest.raises(ValueError, match="compute_band_stats"):
        twelve.normalization()
    schema = ClassSchema(("a",), image=twelve).with_normalization([0.5] * 12, [0.1] * 12)
    assert schema.image.normalization() == ((0.5,) * 12, (0.1,) * 12)


def test_colour_lookup_matches_a_per_class_loop() -> None:
    rng = np.random.default_rng(0)
    pal = np.array([*ARAS400K.colors, (1, 2, 3), (0, 100, 1), (255, 255, 255)], np.uint8)
    rgb = pal[rng.integers(0, len(pal), (64, 48))]
    labels, unknown = ARAS400K.decode_colors(rgb)
    ref = _reference_decode(rgb, ARAS400K)
    assert np.array_equal(labels, ref) and labels.dtype == np.uint8
    assert unknown == int((ref == 255).sum()) > 0
    assert np.array_equal(ARAS400K.rgb_to_labels(rgb), ref)
    rgba = np.concatenate([rgb, np.full((64, 48, 1), 7, np.uint8)], axis=-1)
    assert np.array_equal(ARAS400K.decode_colors(rgba)[0], ref)  # alpha ignored


def test_declared_ignore_colours_are_not_unknown() -> None:
    schema = ClassSchema(("a", "b"), ((10, 20, 30), (40, 50, 60)), ignore_colors=((0, 0, 0),))
    rgb = np.array([[[10, 20, 30], [0, 0, 0], [9, 9, 9], [40, 50, 60]]], np.uint8)
    labels, unknown = schema.decode_colors(rgb)
    assert labels.tolist() == [[0, 255, 255, 1]] and unknown == 1


def test_labels_to_rgb_round_trip() -> None:
    labels = np.tile(np.arange(ARAS400K.num_classes, dtype=np.uint8), (3, 1))
    labels[0, 0] = 255
    rgb = ARAS400K.labels_to_rgb(labels)
    assert tuple(rgb[0, 0]) == (0, 0, 0)
    back, unknown = ARAS400K.decode_colors(rgb)
    assert np.array_equal(back[1:], labels[1:]) and unknown == 1


def test_palette_decoding() -> None:
    palette = np.array([(0, 0, 255), (7, 7, 7), (0, 100, 0)], np.uint8)  # water, ?, tree
    index = np.array([[0, 1, 2, 2], [5, 0, 0, 1]], np.uint8)  # 5 lies past the palette
    labels, unknown = ARAS400K.decode_palette(index, palette)
    assert labels.tolist() == [[6, 255, 0, 0], [255, 6, 6, 255]] and unknown == 3
    # Without mask colours, palette indices are mask values.
    labels, unknown = CUSTOM.decode_palette(np.array([[0, 1, 4, 9]], np.uint8), palette)
    assert labels.tolist() == [[255, 0, 3, 255]] and unknown == 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.float32])
def test_value_decoding_for_every_sample_type(dtype: type) -> None:
    raw = np.array([[1, 2, 3, 4, 0, 9]], dtype)
    labels, unknown = CUSTOM.decode_values(raw)
    assert labels.tolist() == [[0, 1, 2, 3, 255, 255]] and unknown == 1


def test_float_nan_and_fractional_values_are_unknown() -> None:
    raw = np.array([[1.0, np.nan, 2.5, 4.0]], np.float32)
    labels, unknown = CUSTOM.decode_values(raw)
    assert labels.tolist() == [[0, 255, 255, 3]] and unknown == 2


def test_uint16_codes_above_255() -> None:
    schema = ClassSchema(("low", "high"), values=(3, 1000))
    labels, unknown = schema.decode_values(np.array([[3, 1000, 999, 65535]], np.uint16))
    assert labels.tolist() == [[0, 1, 255, 255]] and unknown == 2
