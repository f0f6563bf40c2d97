"""Export a run to one self-contained ONNX file with dynamic batch, height and width.

:func:`export_onnx` traces the model with the dynamo exporter, embeds the run's metadata
(:func:`~lale.inference.onnx.io.onnx_metadata`) and writes the file only if the graph's
shapes are symbolic and onnxruntime's logits match PyTorch's on other shapes. How the padding
branches stay right for every size: docs/design.md#onnx-export. Quantisation:
:mod:`lale.inference.onnx.quantize`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lale import run_layout
from lale.atomic import staged_path
from lale.errors import one_line
from lale.inference.onnx.backend import OnnxBackend
from lale.inference.onnx.io import (
    EXAMPLE_BATCH,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    graph_dims,
    keep_torchvision_importable,
    onnx_metadata,
    save_model,
    set_metadata,
)
from lale.models.padding import InputPadding
from lale.runs import load_run

if TYPE_CHECKING:
    import onnx

__all__ = [
    "OPSET",
    "PARITY_SHAPES",
    "TOLERANCE",
    "ExportResult",
    "ParityCheck",
    "check_dynamic",
    "check_parity",
    "export_onnx",
]

OPSET = 20
"""ONNX opset: supported by onnxruntime >= 1.17; RMSNorm and attention are decomposed."""
TOLERANCE = 1e-4
"""Largest accepted absolute difference between ONNX and PyTorch logits."""
PARITY_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 64, 64),
    (3, 250, 198),
    (2, 33, 47),
    (1, 12, 30),
)
"""``(batch, height, width)`` of the parity inputs: a multiple of 32 (no padding), odd sides at
another batch than the export's, and an input too small to reflect (replicate-padded to 32×32,
so the 1/32 map is 1×1 and attention sees a single token)."""
_DROPPED_NODE_PROPS = ("pkg.torch.onnx.",)  # stack traces with local paths, FX names


@dataclass(frozen=True)
class ParityCheck:
    """ONNX against PyTorch on one random input.

    Attributes:
        shape: Input ``(batch, channels, height, width)``.
        max_abs_diff: Largest absolute difference of the logits.
    """

    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote and how it checked it.

    Attributes:
        path: The ``.onnx`` file.
        model: Registry name of the exported model.
        size_bytes: Size on disk, external data file included.
        external_data: The weights file beside ``path`` for models over 2 GB, else ``None``.
        opset: ONNX opset of the default domain.
        input_dims: The graph input's shape, symbolic axes by name.
        output_dims: The graph output's shape.
        parity: One check per parity shape.
        tolerance: The bound every ``max_abs_diff`` met.
    """

    path: Path
    model: str
    size_bytes: int
    external_data: Path | None
    opset: int
    input_dims: tuple[int | str, ...]
    output_dims: tuple[int | str, ...]
    parity: tuple[ParityCheck, ...]
    tolerance: float

    @property
    def worst(self) -> float:
        """The largest difference over all parity checks."""
        return max((p.max_abs_diff for p in self.parity), default=0.0)


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@contextmanager
def _export_warnings() -> Iterator[None]:
    # Deprecation chatter from torch.export's pytree internals, not actionable here.
    with warnings.catch_warnings(), _survivable_shape_suggestions():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
        yield


@contextmanager
def _survivable_shape_suggestions() -> Iterator[None]:
    """Keep torch.export's suggested-fix printer from ending the export.

    When the first, strict attempt of ``torch.onnx.export`` meets shape guards it cannot prove
    (SegFormer's overlapping patch embeddings, for one), torch builds a message with suggested
    dimension fixes, and for some guards that builder itself fails an assertion ("Cannot create
    Dim with inconsistent min"). The exporter's next strategies, which would succeed, then never
    run. Here the builder falls back to a plain message for the duration of the export; the
    graph is checked afterwards as every export is (dynamic axes and the parity check).
    """
    from torch.fx.experimental import symbolic_shapes

    constraints = getattr(symbolic_shapes, "DimConstraints", None)
    original = getattr(constraints, "prettify_results", None)
    if constraints is None or original is None:
        yield
        return

    def prettify(self: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return str(original(self, *args, **kwargs))
        except AssertionError as err:
            return f"(torch could not suggest dimension fixes: {err})"

    constraints.prettify_results = prettify
    try:
        yield
    finally:
        constraints.prettify_results = original


def _pad_multiple(model: nn.Module) -> int | None:
    """The multiple a model pads every input side to inside ``forward`` (``None``: it does not,
    or it also bounds the sides), from its ``input_padding`` attribute."""
    padding = getattr(model, "input_padding", None)
    if isinstance(padding, InputPadding) and padding.any_size:
        return padding.multiple
    return None


def _strip_node_metadata(proto: onnx.ModelProto) -> None:
    """Drop the exporter's per-node stack traces (local file paths) and FX bookkeeping."""
    for node in proto.graph.node:
        kept = [
            (p.key, p.value)
            for p in node.metadata_props
            if not p.key.startswith(_DROPPED_NODE_PROPS)
        ]
        del node.metadata_props[:]
        for key, value in kept:
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value


def check_dynamic(dims: dict[str, tuple[int | str, ...]]) -> None:
    """Raise :class:`ExportError` unless the image input and logits have symbolic batch, height
    and width (``dims`` as :func:`~lale.inference.onnx.io.graph_dims` gives them)."""
    for name in (INPUT_NAME, OUTPUT_NAME):
        shape = dims.get(name)
        if shape is None or len(shape) != 4:
            raise ExportError(f"the graph has no 4-D {name!r} (found {dims})")
        fixed = [
            f"{axis}={shape[i]}"
            for i, axis in ((0, "batch"), (2, "height"), (3, "width"))
            if not isinstance(shape[i], str) or shape[i] == "?"
        ]
        if fixed:
            raise ExportError(
                f"the export fixed {', '.join(fixed)} of {name!r}: the graph is not dynamic"
            )


def check_parity(
    model: nn.Module,
    onnx_path: str | Path,
    shapes: Sequence[tuple[int, ...]],
    seed: int = 0,
) -> tuple[ParityCheck, ...]:
    """Max absolute logit difference of PyTorch and onnxruntime on seeded N(0, 1) inputs.

    Args:
        model: The PyTorch model (eval mode, CPU).
        onnx_path: Its export.
        shapes: Full input shapes ``(batch, channels, height, width)``.
        seed: Seed of the random inputs.
    """
    backend = OnnxBackend(onnx_path)
    generator = torch.Generator().manual_seed(seed)
    checks = []
    with torch.inference_mode():
        for shape in shapes:
            x = torch.randn(*shape, generator=generator)
            size = "×".join(map(str, shape))
            try:
                expected = model(x).float()
            except (RuntimeError, ValueError) as err:
                raise ExportError(f"the PyTorch model fails on {size}: {one_line(err)}") from err
            try:
                got = backend(x)
            except Exception as err:  # onnxruntime's errors have no common public base
                raise ExportError(f"onnxruntime fails on {size}: {one_line(err)}") from err
            if got.shape != expected.shape:
                raise ExportError(
                    f"ONNX logits have shape {tuple(got.shape)} for input {tuple(shape)}, "
                    f"PyTorch's {tuple(expected.shape)}"
                )
            checks.append(ParityCheck(tuple(shape), float((got - expected).abs().max())))
    return tuple(checks)


def _export_proto(model: nn.Module, example: torch.Tensor, min_side: int) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    height = torch.export.Dim("height", min=min_side)
    width = torch.export.Dim("width", min=min_side)
    try:
        with _export_warnings():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: batch, 2: height, 3: width},),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=OPSET,
                optimize=True,
                verbose=False,
            )
    except (torch.onnx.errors.OnnxExporterError, RuntimeError, ValueError) as err:
        raise ExportError(f"torch.onnx.export failed: {one_line(err)}") from err
    if program is None:  # only for the legacy exporter; keeps the type checker informed
        raise ExportError("torch.onnx.export returned no program")
    return program.model_proto


def export_onnx(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    shapes: Sequence[tuple[int, int, int]] = PARITY_SHAPES,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    say: Say = _quiet,
) -> ExportResult:
    """Export a run's model to one self-contained ONNX file, checked against PyTorch.

    Args:
        run_dir: The run directory (``config.json`` + ``model.safetensors``).
        out: The ``.onnx`` file to write; default ``RUN/model.onnx``. Replaced atomically, and
            only once the checks pass.
        shapes: ``(batch, height, width)`` of the parity inputs (channels from the run).
        tolerance: Largest accepted max absolute difference of the logits.
        seed: Seed of the example and parity inputs.
        say: Progress messages.

    Raises:
        RunError: The run directory is incomplete or invalid.
        ExportError: The exporter failed, fixed an axis, or the parity check failed.
    """
    keep_torchvision_importable()
    run_dir = Path(run_dir)
    model, config = load_run(run_dir, "cpu")
    target = run_dir / run_layout.ONNX if out is None else Path(out)
    if target.is_dir():
        raise ExportError(f"{target}: is a folder; give the .onnx file to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    multiple = _pad_multiple(model)
    # Sides that are not multiples of the padding stride, yet long enough to reflect: the
    # traced branch (docs/design.md#onnx-export). Without internal padding, plain multiples.
    m = multiple or 32
    side_h, side_w = (3 * m + 1, 3 * m + 15) if multiple else (4 * m, 5 * m)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(EXAMPLE_BATCH, config.in_channels, side_h, side_w, generator=generator)
    say(f"exporting {config.model} with the dynamo exporter (this can take a minute)…")
    proto = _export_proto(model, example, min_side=m if multiple else 1)
    _strip_node_metadata(proto)
    set_metadata(proto, onnx_metadata(config, multiple))
    proto.doc_string = (
        f"lale {config.model}: land-cover segmentation, {config.in_channels} bands → "
        f"{config.num_classes} classes; see metadata_props"
    )
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    tmp = staged_path(target)
    data_file: Path | None = None
    try:
        data_file = save_model(proto, tmp, target)
        del proto
        dims = graph_dims(tmp)
        check_dynamic(dims)
        say("checking onnxruntime against PyTorch on random inputs…")
        full = [(b, config.in_channels, h, w) for b, h, w in shapes]
        parity = check_parity(model, tmp, full, seed=seed)
        worst = max(parity, key=lambda p: p.max_abs_diff, default=None)
        if worst is not None and not worst.max_abs_diff < tolerance:
            shape = "×".join(map(str, worst.shape))
            raise ExportError(
                f"parity check failed: max |ONNX - PyTorch| = {worst.max_abs_diff:.3g} at "
                f"{shape} exceeds {tolerance:g}; nothing written"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if data_file is not None:
            data_file.unlink(missing_ok=True)
        raise
    size = target.stat().st_size + (data_file.stat().st_size if data_file else 0)
    return ExportResult(
        path=target,
        model=config.model,
        size_bytes=size,
        external_data=data_file,
        opset=opset,
        input_dims=dims[INPUT_NAME],
        output_dims=dims[OUTPUT_NAME],
        parity=parity,
        tolerance=tolerance,
    )
