"""How a scene's samples become model input: which bands, which conversion, which scaling.

The rules (band selection; 8-bit, DN and reflectance inputs against what the run was trained on;
``--scale``/``--offset`` overrides; no-data fed as 0) are in docs/design.md#bands-and-scaling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from lale.data.io.rasters import QUANTIFICATION, aras400k_uint8, to_uint8
from lale.data.schema import ImageSpec
from lale.errors import DataError
from lale.inference.options import PredictOptions
from lale.inference.scene import Scene
from lale.run_config import RunConfig

__all__ = ["InputPlan", "plan_input"]

Kind = Literal["8-bit", "DN", "reflectance"]
Convert = Literal["raw", "tci8", "aras400k", "reflectance"]


def _kind(path: object, dtype: str) -> Kind:
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return "8-bit"
    if np.issubdtype(dt, np.integer):
        return "DN"
    if np.issubdtype(dt, np.floating):
        return "reflectance"
    raise DataError(path, f"cannot predict from {dt.name} samples")


@dataclass(frozen=True)
class InputPlan:
    """Which bands to read and how to turn their samples into model input.

    Attributes:
        bands: 1-based bands, in model order.
        convert: ``"raw"`` (samples as they are), ``"tci8"`` (to 8 bits by ESA's true-colour
            rule), ``"aras400k"`` (to 8 bits by ARAS400k's rule: each window divided by its own
            maximum over its valid pixels, as a training patch) or ``"reflectance"`` (DN to
            reflectance) before normalisation.
        offsets: DN offset of each band, for the conversions.
        spec: Scaling and statistics to normalise with after the conversion.
        description: One line for logs and the area table.
    """

    bands: tuple[int, ...]
    convert: Convert
    offsets: tuple[int, ...]
    spec: ImageSpec
    description: str

    @functools.cached_property
    def _affine(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(a, b)``, ``C×1×1`` each: ``x·a + b = ((x + offset) / scale − mean) / std``."""
        mean, std = (
            np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in self.spec.normalization()
        )
        scale, offset = np.float32(self.spec.scale), np.float32(self.spec.offset)
        a = np.float32(1.0) / (scale * std)
        return a, (offset / scale - mean) / std

    def prepare(self, data: NDArray[Any], valid: NDArray[np.bool_]) -> NDArray[np.float32]:
        """Model input (``C×h×w`` float32) of one window's raw samples; no-data pixels become 0.

        The normalisation is :func:`lale.data.transforms.normalize_input`'s, in numpy.
        """
        if self.convert == "aras400k":
            data = aras400k_uint8(data, valid)
        elif self.convert == "tci8":
            data = to_uint8(data, self.offsets)
        elif self.convert == "reflectance" and np.issubdtype(data.dtype, np.integer):
            off = np.asarray(self.offsets, dtype=np.float32).reshape(-1, 1, 1)
            data = (data.astype(np.float32) + off) / np.float32(QUANTIFICATION)
        a, b = self._affine
        if a.shape[0] != data.shape[0]:
            raise ValueError(f"{data.shape[0]} channels, statistics for {a.shape[0]}")
        x = np.asarray(data, dtype=np.float32) * a
        x += b
        x = np.where(valid, x, np.float32(0.0))
        return np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def _bands(
    scene: Scene, config: RunConfig, spec: ImageSpec, wanted: tuple[int, ...] | None
) -> tuple[int, ...]:
    channels, count = config.in_channels, scene.count
    if wanted is not None:
        if len(wanted) != channels:
            raise DataError(
                scene.path, f"--bands gives {len(wanted)} bands but the model takes {channels}"
            )
        if max(wanted) > count:
            raise DataError(scene.path, f"has {count} bands; --bands asks for band {max(wanted)}")
        return tuple(wanted)
    if config.bands is not None and count == spec.band_count:
        return tuple(config.bands)
    if count == channels:
        return tuple(range(1, channels + 1))
    trained = f"{spec.band_count}-band images" + (
        "" if config.bands is None else f", bands {','.join(map(str, config.bands))}"
    )
    raise DataError(
        scene.path,
        f"has {count} bands but the model takes {channels} (trained on "
        f"{trained}); choose {channels} with --bands",
    )


def plan_input(scene: Scene, config: RunConfig, options: PredictOptions) -> InputPlan:
    """Band selection and scaling of one input for a run (rules: docs/design.md#bands-and-scaling).

    Raises:
        DataError: The bands cannot satisfy the model, or the samples cannot be scaled.
    """
    spec = config.image_spec()
    bands = _bands(scene, config, spec, options.bands)
    mean, std = spec.normalization()
    have = _kind(scene.path, scene.dtype)
    want = None if spec.dtype is None else _kind(scene.path, spec.dtype)
    scale, offset = spec.scale, spec.offset
    convert: Convert = "raw"
    if options.scale is not None or options.offset is not None:
        scale = options.scale if options.scale is not None else scale
        offset = options.offset if options.offset is not None else offset
    elif config.scaling == "aras400k":
        convert = "aras400k"
    elif want is not None and have != want:
        if want == "8-bit":
            convert = "tci8"
        elif have == "8-bit":
            raise DataError(
                scene.path,
                f"8-bit samples cannot be turned back into the {want} "
                f"({spec.dtype}) the run was trained on; give the original data "
                "or --scale/--offset",
            )
        else:
            convert, scale, offset = "reflectance", 1.0, 0.0
    offsets = scene.dn_offsets(bands) if convert != "raw" else tuple(0 for _ in bands)
    norm = ImageSpec(
        band_count=len(bands), dtype=None, scale=scale, offset=offset, mean=mean, std=std
    )
    steps = {
        "raw": "",
        "tci8": f"{have} → 8-bit (TCI rule) → ",
        "aras400k": "→ 8-bit per window (ARAS400k rule: window / its max × 255) → ",
        "reflectance": f"{have} → ",
    }
    description = (
        f"bands {','.join(map(str, bands))}; {scene.dtype} {steps[convert]}"
        f"(x + {offset:g}) / {scale:g}, standardised"
    )
    return InputPlan(bands, convert, offsets, norm, description)
