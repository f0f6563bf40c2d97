"""Whole-scene prediction: sliding windows over a scene, streamed to GeoTIFF/PNG and area tables.

The predictor reads one batch of windows at a time (one rasterio window covering a few
neighbouring tiles of a row band), runs a *backend* — any ``Callable[[Tensor], Tensor]`` from
normalised ``B×C×tile×tile`` float32 to ``B×K×tile×tile`` logits (:class:`TorchBackend`, or the
ONNX backend) — and adds the weighted logits into a :class:`~lale.inference.tiling.
StripAccumulator` that holds one tile of rows. When a row band is done, its finished rows are
averaged, turned into classes (argmax; no-data → 255) and confidence, counted for the area table
and written out. Memory is bounded by the batch and one tile-high strip, never by the scene (GDAL's
block cache included: it is sized to one row band of blocks, see
:func:`~lale.inference.scene.block_cache_bytes`).
Windows without a single valid pixel are not run through the model.

**Bands and scaling** (:func:`plan_input`). Bands: ``--bands`` if given; else the run's band
selection when the file has the run's band count; else all bands when the file has exactly the
model's channel count. Samples are turned into the units the run was trained on, by sample type
(8-bit = uint8, DN = other integers, reflectance = floats):

- same type as the run's (or the run accepts any): the run's ``(x + offset) / scale``;
- the run is 8-bit, the input DN or reflectance: ESA's true-colour rule
  (:func:`lale.data.rasters.to_uint8`: reflectance 0–0.2 → 0–255, DN offset from the
  ``BOA_ADD_OFFSET`` tag), then the run's scaling — exactly how ``lale prepare`` made the data;
- the run is DN or reflectance, the input the other: reflectance, ``(DN + BOA_ADD_OFFSET) /
  10000`` for DN (the run's scaled units are taken to be reflectance);
- the run is DN or reflectance, the input 8-bit: refused (8 bits cannot be turned back).

``scale``/``offset`` options override all this: raw samples, ``(x + offset) / scale``.
The run's mean/std standardise the result; no-data pixels are fed as 0 (the mean).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from lale import run_layout
from lale.data.rasters import QUANTIFICATION, to_uint8
from lale.data.schema import ImageSpec
from lale.data.transforms import Normalize
from lale.errors import DataError, UnavailableError, UsageError
from lale.inference.areas import AreaCounter, AreaTable, row_areas_km2
from lale.inference.scene import Scene, SceneOutputs, block_cache_bytes, open_scene
from lale.inference.tiling import Blend, SlideStats, TileGrid, slide_inference
from lale.runs import CONFIG_NAME, RunConfig, RunError, load_config, load_run

__all__ = [
    "ONNX_NAME",
    "Backend",
    "BackendUnavailableError",
    "InputPlan",
    "PredictOptions",
    "SceneResult",
    "TorchBackend",
    "load_backend",
    "plan_input",
    "predict_scene",
]

Backend = Callable[[Tensor], Tensor]
"""Normalised ``B×C×H×W`` float32 in, ``B×K×H×W`` logits out (any device in, CPU is fine)."""
Progress = Callable[[int, int], None]
"""Called with ``(windows done, windows in total)``."""
Kind = Literal["8-bit", "DN", "reflectance"]


@dataclass(frozen=True)
class PredictOptions:
    """How to tile, read and write a scene.

    Attributes:
        tile: Window side fed to the model (scenes smaller than this are padded).
        overlap: Pixels shared by neighbouring windows.
        batch_size: Windows per model call.
        blend: Weighting of overlapping windows (``"smooth"`` hides seams).
        bands: 1-based input bands in model order, overriding the run's selection.
        scale: Divisor of the raw samples, overriding the run's scaling (see module docs).
        offset: Added to the raw samples before ``scale``; overrides the run's.
        probabilities: Also write the confidence map (uint8 max softmax × 255, no-data 0).
        preview_size: Longest side of the preview PNG of raster inputs.
    """

    tile: int = 256
    overlap: int = 64
    batch_size: int = 8
    blend: Blend = "smooth"
    bands: tuple[int, ...] | None = None
    scale: float | None = None
    offset: float | None = None
    probabilities: bool = False
    preview_size: int = 2048

    def __post_init__(self) -> None:
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise UsageError(
                f"need 0 <= overlap < tile, got tile {self.tile}, overlap {self.overlap}"
            )
        if self.batch_size < 1 or self.preview_size < 1:
            raise UsageError("batch_size and preview_size must be positive")
        if self.blend not in ("uniform", "smooth"):
            raise UsageError(f"blend must be 'uniform' or 'smooth', got {self.blend!r}")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise UsageError(f"bands are 1-based band numbers, got {self.bands}")
        if self.scale is not None and self.scale == 0:
            raise UsageError("scale must not be 0")


class TorchBackend:
    """A PyTorch model as a backend: ``inference_mode``, eval mode, logits back on the CPU.

    Args:
        model: Maps ``B×C×H×W`` to ``B×K×H×W`` logits.
        device: Where the model runs.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, batch: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(batch.to(self.device)).float().cpu()


BackendKind = Literal["torch", "onnx"]
ONNX_NAME = run_layout.ONNX
"""File name of a run's exported ONNX model (``RUN/model.onnx``)."""


class BackendUnavailableError(UnavailableError):
    """The requested backend cannot be used in this installation."""


def load_backend(
    run_dir: str | Path, kind: BackendKind = "torch", device: str | torch.device = "cpu"
) -> tuple[Backend, RunConfig]:
    """The backend and config of a run directory.

    Args:
        run_dir: Run directory (``config.json``, ``model.safetensors``; ``model.onnx`` for onnx).
        kind: ``"torch"`` (the safetensors weights) or ``"onnx"`` (``RUN/model.onnx``).
        device: Where the model runs (onnxruntime's CUDA provider for ``"cuda"``).

    Raises:
        RunError: Missing or invalid run files.
        BackendUnavailableError: The ONNX backend is not installed.
    """
    run_dir = Path(run_dir)
    if kind == "torch":
        model, config = load_run(run_dir, device)
        return TorchBackend(model, device), config
    if kind != "onnx":
        raise UsageError(f"backend must be 'torch' or 'onnx', got {kind!r}")
    config = load_config(run_dir / CONFIG_NAME)
    onnx_path = run_dir / ONNX_NAME
    if not onnx_path.is_file():
        raise RunError(onnx_path, "no ONNX model in the run directory; export it first")
    try:
        from lale.inference.onnx_backend import OnnxBackend

        return OnnxBackend(onnx_path, device=device), config
    except ImportError as err:  # the module, or onnxruntime inside it
        raise BackendUnavailableError(f"the onnx backend is not available here ({err})") from err


def _kind(path: Path, dtype: str) -> Kind:
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
            rule) or ``"reflectance"`` (DN to reflectance) before ``normalize``.
        offsets: DN offset of each band, for the conversions.
        normalize: Scaling and standardisation to apply after the conversion.
        description: One line for logs and the area table.
    """

    bands: tuple[int, ...]
    convert: Literal["raw", "tci8", "reflectance"]
    offsets: tuple[int, ...]
    normalize: Normalize
    description: str

    def prepare(self, data: NDArray[Any], valid: NDArray[np.bool_]) -> Tensor:
        """Model input (``C×h×w`` float32) of raw samples; no-data pixels become 0."""
        if self.convert == "tci8":
            data = to_uint8(data, self.offsets)
        elif self.convert == "reflectance" and np.issubdtype(data.dtype, np.integer):
            off = np.asarray(self.offsets, dtype=np.float32).reshape(-1, 1, 1)
            data = (data.astype(np.float32) + off) / np.float32(QUANTIFICATION)
        x = self.normalize(torch.from_numpy(np.asarray(data, dtype=np.float32)))
        return torch.where(torch.from_numpy(valid), x, 0.0).nan_to_num_(0.0, 0.0, 0.0)


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
    """Band selection and scaling of one input for a run (rules in the module docstring).

    Raises:
        DataError: The bands cannot satisfy the model, or the samples cannot be scaled.
    """
    spec = config.schema().image
    bands = _bands(scene, config, spec, options.bands)
    if config.mean is not None and config.std is not None:
        mean, std = tuple(config.mean), tuple(config.std)
    else:
        mean, std = spec.normalization()
    have = _kind(scene.path, scene.dtype)
    want = None if spec.dtype is None else _kind(scene.path, spec.dtype)
    scale, offset = spec.scale, spec.offset
    convert: Literal["raw", "tci8", "reflectance"] = "raw"
    if options.scale is not None or options.offset is not None:
        scale = options.scale if options.scale is not None else scale
        offset = options.offset if options.offset is not None else offset
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
    steps = {"raw": "", "tci8": f"{have} → 8-bit (TCI rule) → ", "reflectance": f"{have} → "}
    description = (
        f"bands {','.join(map(str, bands))}; {scene.dtype} {steps[convert]}"
        f"(x + {offset:g}) / {scale:g}, standardised"
    )
    return InputPlan(bands, convert, offsets, Normalize(norm), description)


@dataclass(frozen=True)
class SceneResult:
    """What predicting one scene produced.

    Attributes:
        input: The input file.
        outputs: Written files by kind (``classes``, ``preview``, ``confidence``, ``areas_csv``,
            ``areas_json``).
        areas: The area table.
        height: Scene rows.
        width: Scene columns.
        windows: Windows in the grid.
        windows_run: Windows run through the model (the others held no valid pixel).
        seconds: Wall time.
        plan: Band selection and scaling, in words.
    """

    input: Path
    outputs: dict[str, Path]
    areas: AreaTable
    height: int
    width: int
    windows: int
    windows_run: int
    seconds: float
    plan: str


def predict_scene(
    path: str | Path,
    out_dir: str | Path,
    backend: Backend,
    config: RunConfig,
    options: PredictOptions | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> SceneResult:
    """Predict one scene and write its class map, preview, confidence and area table.

    Args:
        path: PNG, JPEG or GeoTIFF.
        out_dir: Output folder.
        backend: The model (see :data:`Backend`).
        config: The run's config (classes, bands, scaling).
        options: Tiling, bands, scaling and output options.
        name: Base name of the outputs (default: the input's stem).
        progress: Called with ``(windows done, windows in total)``.

    Raises:
        DataError: The input is unreadable, its bands cannot satisfy the model, or it holds no
            valid pixel. Nothing is left in ``out_dir`` then.
    """
    start, path, out_dir = time.perf_counter(), Path(path), Path(out_dir)
    options = options or PredictOptions()
    schema = config.schema()
    with (
        open_scene(path) as scene,
        rasterio.Env(GDAL_CACHEMAX=block_cache_bytes(scene, options.tile)),
    ):
        plan = plan_input(scene, config, options)
        grid = TileGrid(scene.height, scene.width, options.tile, options.overlap)
        row_km2, method = row_areas_km2(scene.crs, scene.transform, scene.height, scene.width)
        counter = AreaCounter(config.num_classes, row_km2)
        name = name or path.stem
        outputs = SceneOutputs(
            scene, out_dir, name, schema, options.probabilities, options.preview_size
        )
        stats = SlideStats()
        try:
            strips = slide_inference(
                functools.partial(scene.read, plan.bands),
                plan.prepare,
                backend,
                grid,
                config.num_classes,
                blend=options.blend,
                batch_size=options.batch_size,
                progress=progress,
                stats=stats,
            )
            for row, logits, valid in strips:
                classes = logits.max(0).indices.to(torch.uint8).numpy()  # faster than argmax
                classes[~valid] = 255
                confidence = None
                if options.probabilities:
                    p = torch.softmax(logits, 0).amax(0).mul_(255).round_().clamp_(1, 255)
                    confidence = p.to(torch.uint8).numpy()
                    confidence[~valid] = 0
                counter.add(row, classes)
                outputs.write(row, classes, confidence)
            if counter.valid_pixels == 0:
                raise DataError(path, "every pixel is no-data; nothing to predict")
            files = outputs.commit()
        except BaseException:
            outputs.abort()
            raise
    table = counter.table(schema.names, method)
    files["areas_csv"], files["areas_json"] = (
        out_dir / f"{name}_areas.{s}" for s in ("csv", "json")
    )
    context = {
        "input": str(path),
        "height": scene.height,
        "width": scene.width,
        "crs": None if scene.crs is None else scene.crs.to_string(),
        "transform": list(scene.transform)[:6] if scene.crs is not None else None,
        "model": config.model,
        "input_plan": plan.description,
        "tile": options.tile,
        "overlap": options.overlap,
        "blend": options.blend,
    }
    table.write(files["areas_csv"], files["areas_json"], context)
    return SceneResult(
        input=path,
        outputs=files,
        areas=table,
        height=scene.height,
        width=scene.width,
        windows=stats.windows,
        windows_run=stats.run,
        seconds=time.perf_counter() - start,
        plan=plan.description,
    )
