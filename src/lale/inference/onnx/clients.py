"""One ONNX file that GIS clients run as it is: the QGIS Deepness plugin and GeoDeep.

Both tools feed a tile of 8-bit layer samples ``v`` as ``v / 255`` (Deepness then subtracts
``standardization_mean`` and divides by ``standardization_std`` from the metadata; GeoDeep
applies nothing), zero every output below a probability threshold (Deepness' "probability
threshold", GeoDeep's ``seg_thresh``), take the argmax over classes, and read the tile size from
the graph's input (GeoDeep: ``shape[-1]``) or from ``tile_size`` (Deepness). The default export
(logits of a normalised input, any size) is not that: a threshold of 0.5 on logits turns every
pixel whose best logit is below 0.5 into class 0.

``lale export --clients`` therefore writes a second file, ``NAME.clients.onnx``:

- input ``image``: float32 ``[batch, C, T, T]`` holding ``v / 255`` (``T`` fixed, the tile);
- the run's scaling and normalisation inside the graph, ``((255·x + offset) / scale − mean) /
  std``, so Deepness' standardisation is written as 0 and 1;
- output ``probabilities``: the softmax over classes;
- ``seg_thresh`` 0 and ``seg_small_segment`` 0: no threshold and no small-segment filter, so
  the argmax is the model's.

It is made for models trained on 8-bit imagery (an 8-bit rule per window, such as ARAS400k's
per-patch maximum, cannot be written into a fixed graph) and refused otherwise. ``lale predict
--model NAME.clients.onnx`` runs it too (:class:`~lale.inference.onnx.backend.OnnxBackend` reads
``variant``), with the same class map as the default file up to float rounding.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from lale.atomic import staged_path
from lale.errors import UsageError, one_line
from lale.inference.onnx.deepness import OVERLAP, deepness_metadata
from lale.inference.onnx.io import (
    INPUT_NAME,
    ExportError,
    graph_dims,
    keep_torchvision_importable,
    onnx_metadata,
    save_model,
    set_metadata,
)
from lale.runs import load_run

if TYPE_CHECKING:
    from lale.run_config import RunConfig

__all__ = [
    "CLIENT_VARIANT",
    "PROBABILITIES",
    "ClientExport",
    "ClientGraph",
    "check_clients",
    "client_metadata",
    "client_path",
    "export_clients",
]

CLIENT_VARIANT = "clients"
"""``variant`` metadata value of a clients file."""
PROBABILITIES = "probabilities"
"""Name of a clients file's output."""
_TOLERANCE = 1e-4
_OPSET = 20


class ClientGraph(nn.Module):
    """``model`` behind the clients' conventions: ``v / 255`` in, softmax probabilities out.

    Args:
        model: The segmentation network (normalised input, logits out).
        scale: The run's sample scale (255 for 8-bit imagery).
        offset: The run's sample offset.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation std.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float,
        offset: float,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.model = model
        m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.gain: torch.Tensor
        self.shift: torch.Tensor
        self.register_buffer("gain", 255.0 / (scale * s))
        self.register_buffer("shift", (offset / scale - m) / s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x * self.gain + self.shift), dim=1)


@dataclass(frozen=True)
class ClientExport:
    """What :func:`export_clients` wrote.

    Attributes:
        path: The ``.clients.onnx`` file.
        tile: Side of the fixed input.
        size_bytes: Size on disk.
        max_abs_diff: Largest probability difference of onnxruntime and PyTorch.
    """

    path: Path
    tile: int
    size_bytes: int
    max_abs_diff: float


def client_path(onnx_path: Path) -> Path:
    """``model.onnx`` → ``model.clients.onnx``."""
    return onnx_path.with_name(f"{onnx_path.stem}.{CLIENT_VARIANT}.onnx")


def client_metadata(base: dict[str, str], channels: int, tile: int) -> dict[str, str]:
    """The default file's metadata, re-described for the clients' conventions."""
    values = dict(base)
    values.update(
        {
            "variant": CLIENT_VARIANT,
            "input": (
                f"{INPUT_NAME}: float32 [batch, {channels}, {tile}, {tile}] = 8-bit sample / 255; "
                "scaling and normalisation are inside the graph"
            ),
            "output": (
                f"{PROBABILITIES}: float32 [batch, num_classes, {tile}, {tile}] softmax "
                "probabilities; the argmax is a key of class_names"
            ),
            "tile": str(tile),
            "tiles_size": json.dumps(tile),
            "tile_size": json.dumps(tile),
            "tiles_overlap": json.dumps(round(100 * min(OVERLAP, tile // 4) / tile)),
            "standardization_mean": json.dumps([0.0] * channels),
            "standardization_std": json.dumps([1.0] * channels),
            "seg_thresh": json.dumps(0.0),
            "seg_small_segment": json.dumps(0),
        }
    )
    return values


def check_clients(config: RunConfig) -> None:
    """Raise :class:`UsageError` unless the run reads 8-bit samples as ``v / 255``."""
    image = config.image_spec()
    if config.scaling != "truecolor":
        raise UsageError(
            f"--clients: this run's images were scaled to 8 bits by the {config.scaling!r} rule "
            "per window, which a fixed graph cannot do; GIS clients feed 8-bit layers / 255"
        )
    if image.dtype not in (None, "uint8") or image.scale != 255.0 or image.offset != 0.0:
        raise UsageError(
            f"--clients: this run reads {image.dtype} samples as (x + {image.offset:g}) / "
            f"{image.scale:g}; GIS clients feed 8-bit layers / 255, so the file would be wrong"
        )


def export_clients(run_dir: str | Path, out: str | Path, tile: int = 256) -> ClientExport:
    """Write the clients file of a run (module docs), checked against PyTorch.

    Args:
        run_dir: The run directory.
        out: The ``.onnx`` file to write (replaced atomically once the check passes).
        tile: Side of the fixed input (the clients' tile).

    Raises:
        UsageError: The run was not trained on 8-bit imagery.
        ExportError: The exporter failed or onnxruntime disagrees with PyTorch.
    """
    keep_torchvision_importable()
    model, config = load_run(Path(run_dir), "cpu")
    check_clients(config)
    image = config.image_spec()
    mean, std = (
        (tuple(config.mean), tuple(config.std))
        if config.mean is not None and config.std is not None
        else image.normalization()
    )
    graph = ClientGraph(model, image.scale, image.offset, mean, std).eval()
    channels = config.in_channels
    example = torch.rand(2, channels, tile, tile, generator=torch.Generator().manual_seed(0))
    from lale.inference.onnx.export import _export_warnings

    try:
        with _export_warnings():
            program = torch.onnx.export(
                graph, (example,), dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                input_names=[INPUT_NAME], output_names=[PROBABILITIES],
                opset_version=_OPSET, optimize=True, verbose=False,
            )  # fmt: skip
    except (torch.onnx.errors.OnnxExporterError, RuntimeError, ValueError) as err:
        raise ExportError(f"torch.onnx.export failed: {one_line(err)}") from err
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    base = {**onnx_metadata(config, None), **deepness_metadata(config, tile=tile)}
    set_metadata(proto, client_metadata(base, channels, tile))
    proto.doc_string = (
        f"lale {config.model} for GIS clients (QGIS Deepness, GeoDeep): {channels} 8-bit bands "
        f"/ 255 → {config.num_classes} class probabilities, {tile}×{tile} tiles"
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged_path(target)
    try:
        save_model(proto, tmp, target)
        dims = graph_dims(tmp)[INPUT_NAME]
        if tuple(dims[1:]) != (channels, tile, tile):
            raise ExportError(
                f"the clients graph takes {dims}, not [batch, {channels}, {tile}, {tile}]"
            )
        worst = _parity(graph, tmp, channels, tile)
        if not worst < _TOLERANCE:
            raise ExportError(
                f"parity check failed: max |ONNX - PyTorch| probability {worst:.3g} exceeds "
                f"{_TOLERANCE:g}; nothing written"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ClientExport(target, tile, target.stat().st_size, worst)


def _parity(graph: nn.Module, path: Path, channels: int, tile: int) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    with torch.inference_mode():
        for batch in (1, 3):
            x = torch.rand(batch, channels, tile, tile, generator=generator)
            got = session.run(None, {INPUT_NAME: x.numpy()})[0]
            worst = max(worst, float((torch.from_numpy(got) - graph(x)).abs().max()))
    return worst
