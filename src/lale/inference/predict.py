"""Whole-scene prediction: sliding windows over a scene, streamed to GeoTIFF/PNG and area tables.

A backend (:class:`TorchBackend`, or the ONNX one) maps normalised float32 ``B×C×tile×tile``
numpy batches to numpy logits, which a :class:`~lale.inference.tiling.StripAccumulator`
blends; finished rows are written out, so memory is bounded by the batch and one tile-high strip
(docs/design.md#tiling).
:func:`~lale.inference.input_plan.plan_input` picks the bands and scaling
(docs/design.md#bands-and-scaling). Everything but :class:`TorchBackend` is numpy: with an
exported file (:func:`load_model_file`) a scene is predicted without PyTorch
(docs/design.md#backends).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import rasterio
from numpy.typing import NDArray

from lale import run_layout
from lale.data.io.remote import as_raster_source
from lale.errors import DataError, LaleError, UnavailableError, UsageError, cause_text
from lale.inference.areas import AreaCounter, AreaTable, row_areas_km2
from lale.inference.input_plan import plan_input
from lale.inference.inputs import Source, StacInput
from lale.inference.options import PredictOptions
from lale.inference.row_products import row_products
from lale.inference.scene import CroppedScene, Scene, bbox_window, block_cache_bytes, open_scene
from lale.inference.scene_outputs import SceneOutputs
from lale.inference.stac import StackedScene
from lale.inference.tiling import SlideStats, TileGrid, slide_inference
from lale.progress import ProgressFn
from lale.run_config import CONFIG_NAME, RunConfig, RunError, load_config

if TYPE_CHECKING:
    import torch
    from torch import nn


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "SceneResult",
    "TorchBackend",
    "load_backend",
    "load_model_file",
    "predict_scene",
]

Backend = Callable[[NDArray[np.float32]], NDArray[Any]]
"""Normalised ``B×C×H×W`` float32 numpy array in, ``B×K×H×W`` logits (numpy, CPU) out."""


class TorchBackend:
    """A PyTorch model as a backend: ``inference_mode``, eval mode, numpy in and out.

    The one place scene inference touches PyTorch: the batch becomes a tensor on ``device``
    (no copy on the CPU) and the logits come back as a float32 numpy array.

    Args:
        model: Maps ``B×C×H×W`` to ``B×K×H×W`` logits.
        device: Where the model runs.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, batch: NDArray[np.float32] | torch.Tensor) -> NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.as_tensor(batch, device=self.device)
            return self.model(x).float().cpu().numpy()


BackendKind = Literal["torch", "onnx"]


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
        from lale.runs import load_run

        model, config = load_run(run_dir, device)
        return TorchBackend(model, device), config
    if kind != "onnx":
        raise UsageError(f"backend must be 'torch' or 'onnx', got {kind!r}")
    config = load_config(run_dir / CONFIG_NAME)
    onnx_path = run_dir / run_layout.ONNX
    if not onnx_path.is_file():
        raise RunError(onnx_path, "no ONNX model in the run directory; export it first")
    return _onnx_backend(onnx_path, device), config


def _onnx_backend(path: Path, device: str | torch.device) -> Any:
    try:
        from lale.inference.onnx.backend import OnnxBackend

        return OnnxBackend(path, device=device)
    except ImportError as err:  # the module, or onnxruntime inside it
        raise BackendUnavailableError(
            f"the onnx backend is not available here ({err}); pip install 'lale[edge]'"
        ) from err


def load_model_file(path: str | Path, device: str = "cpu") -> tuple[Backend, RunConfig]:
    """The backend and config of an exported ONNX file alone, without PyTorch.

    The file's metadata (``lale export``) holds the run's config: classes, colours, bands,
    scaling and normalisation.

    Args:
        path: An ONNX file written by ``lale export`` (fp32 or int8).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (onnxruntime's CUDA provider).

    Raises:
        DataError: The file is missing, not ONNX, carries no lale run config (a model from
            another tool), or its metadata is not valid JSON or disagrees with itself or with
            the graph (see :func:`~lale.inference.onnx.io.check_lale_metadata`).
        BackendUnavailableError: onnxruntime is not installed.
    """
    path = Path(path)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(device)):
        raise UsageError(f"device must be cpu, cuda or cuda:N, got {str(device)!r}")
    if not path.is_file():
        raise DataError(path, "ONNX file not found")
    try:
        backend = _onnx_backend(path, device)
    except LaleError:
        raise
    except Exception as err:  # onnxruntime's own errors derive from Exception only
        raise DataError(path, f"not a model onnxruntime can load ({cause_text(err)})") from err
    from lale.inference.onnx.io import check_lale_metadata

    config = check_lale_metadata(path, backend)
    return backend, config


@dataclass(frozen=True)
class SceneResult:
    """What predicting one scene produced.

    Attributes:
        input: The input file.
        outputs: Written files by kind (``classes``, ``preview``, ``confidence``,
            ``probabilities``, ``vector``, ``areas_csv``, ``areas_json``).
        areas: The area table.
        height: Scene rows.
        width: Scene columns.
        windows: Windows in the grid.
        windows_run: Windows run through the model (the others held no valid pixel).
        seconds: Wall time.
        plan: Band selection and scaling, in words.
    """

    input: Source
    outputs: dict[str, Path]
    areas: AreaTable
    height: int
    width: int
    windows: int
    windows_run: int
    seconds: float
    plan: str


def _bbox_context(scene: Scene, options: PredictOptions) -> dict[str, Any]:
    window = scene.window if isinstance(scene, CroppedScene) else None
    return {"bbox": list(options.bbox or ()), "bbox_crs": options.bbox_crs, "window": window}


def _opened(path: Source, options: PredictOptions) -> Scene:
    """The scene of ``path``, cut to ``options.bbox`` if one is given."""
    scene = StackedScene(path) if isinstance(path, StacInput) else open_scene(path)
    if options.bbox is None:
        return scene
    try:
        return CroppedScene(scene, bbox_window(scene, options.bbox, options.bbox_crs))
    except BaseException:
        scene.close()
        raise


def predict_scene(
    path: str | Source,
    out_dir: str | Path,
    backend: Backend,
    config: RunConfig,
    options: PredictOptions | None = None,
    *,
    name: str | None = None,
    progress: ProgressFn | None = None,
) -> SceneResult:
    """Predict one scene and write its class map, preview, confidence and area table.

    Args:
        path: PNG, JPEG or GeoTIFF, or a raster's URL (read by windows, see
            :mod:`lale.data.io.remote`).
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
    start, out_dir = time.perf_counter(), Path(out_dir)
    if not isinstance(path, StacInput):
        path = as_raster_source(path)
    options = options or PredictOptions()
    schema = config.schema()
    with (
        _opened(path, options) as scene,
        rasterio.Env(GDAL_CACHEMAX=block_cache_bytes(scene, options.tile)),
    ):
        plan = plan_input(scene, config, options)
        grid = TileGrid(scene.height, scene.width, options.tile, options.overlap)
        row_km2, method = row_areas_km2(scene.crs, scene.transform, scene.height, scene.width)
        counter = AreaCounter(config.num_classes, row_km2)
        name = name or path.stem
        outputs = SceneOutputs(
            scene,
            out_dir,
            name,
            schema,
            options.writes_confidence,
            options.preview_size,
            probabilities=options.probabilities,
            vector=options.vector,
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
                rows = row_products(
                    logits,
                    valid,
                    confidence=options.writes_confidence,
                    probabilities=options.probabilities,
                )
                counter.add(row, rows.classes)
                outputs.write(row, rows.classes, rows.confidence, rows.probabilities)
            if counter.valid_pixels == 0:
                raise DataError(path, "every pixel is no-data; nothing to predict")
            table = counter.table(schema.names, method)
            context = {
                "input": str(path),
                **scene.tags,
                "height": scene.height,
                "width": scene.width,
                "crs": None if scene.crs is None else scene.crs.to_string(),
                "transform": list(scene.transform)[:6] if scene.crs is not None else None,
                "model": config.model,
                "input_plan": plan.description,
                "tile": options.tile,
                "overlap": options.overlap,
                "blend": options.blend,
                **({} if options.bbox is None else _bbox_context(scene, options)),
            }
            outputs.add_file("areas_csv", table.to_csv().encode("utf-8"))
            outputs.add_file("areas_json", table.to_json(**context).encode("utf-8"))
            files = outputs.commit()
        except BaseException:
            outputs.abort()
            raise
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
