"""Run an exported model (``lale export``) with onnxruntime, as a drop-in for the PyTorch one.

:class:`OnnxBackend` maps a normalised float32 ``B×C×H×W`` batch of any shape to ``B×K×H×W``
logits, edge-padding sides of 16 px or less itself as PyTorch would (docs/design.md#onnx-export).
:func:`~lale.inference.onnx.io.read_metadata` decodes the run's metadata embedded in the file.
numpy in, numpy out, and no PyTorch import: ``lale predict --model FILE.onnx`` runs on it alone
(a PyTorch tensor is still accepted, and answered with one). A clients file
(:mod:`lale.inference.onnx.clients`: ``v / 255`` in, probabilities out, a fixed tile) is run
behind the same interface: the batch is mapped back to ``v / 255``, padded to the tile, and the
log-probabilities returned, whose argmax and softmax are those of the logits.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lale.inference.onnx.io import decode_metadata
from lale.inference.pad import pad_mode

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

__all__ = ["OnnxBackend"]


def _device(device: object) -> tuple[str, int | None]:
    """``(type, index)`` of ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``."""
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return kind, int(index) if index else None


def _providers(device: tuple[str, int | None]) -> list[Any]:
    import onnxruntime as ort

    kind, index = device
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        warnings.warn(
            "onnxruntime has no CUDA provider in this installation (it needs the "
            "onnxruntime-gpu package); running the ONNX model on the CPU",
            RuntimeWarning,
            stacklevel=3,
        )
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": index or 0}), "CPUExecutionProvider"]


class OnnxBackend:
    """An ONNX model in an onnxruntime session, called like the PyTorch model.

    Args:
        path: The ``.onnx`` file (self-contained, as ``lale export`` writes it).
        device: ``"cpu"``, or ``"cuda[:N]"`` for onnxruntime's CUDA provider; without that
            provider (plain ``onnxruntime``) a ``RuntimeWarning`` is issued and the CPU is used.
        threads: onnxruntime intra-op threads; ``None`` = onnxruntime's default (all cores).

    Attributes:
        path: The model file.
        metadata: Decoded ``metadata_props`` (see :func:`~lale.inference.onnx.io.read_metadata`).
        providers: Execution providers the session actually uses.
        input_name: Name of the graph's image input.
        in_channels: Input channels the graph takes (``None`` if the graph leaves it open).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``device`` is neither CPU nor CUDA, or ``threads`` < 1.
    """

    def __init__(
        self, path: str | Path, device: str | torch.device = "cpu", threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: ONNX file not found")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        kind, index = _device(device)
        self.device = kind if index is None else f"{kind}:{index}"
        self.session: ort.InferenceSession = ort.InferenceSession(
            str(self.path), sess_options=options, providers=_providers((kind, index))
        )
        self.providers: list[str] = list(self.session.get_providers())
        self.metadata = decode_metadata(dict(self.session.get_modelmeta().custom_metadata_map))
        graph_input = self.session.get_inputs()[0]
        self.input_name: str = graph_input.name
        channels = graph_input.shape[1] if len(graph_input.shape) == 4 else None
        self.in_channels: int | None = channels if isinstance(channels, int) else None
        multiple = self.metadata.get("pad_multiple")
        self._multiple: int | None = multiple if isinstance(multiple, int) else None
        sides: list[Any] = list(graph_input.shape[2:]) if len(graph_input.shape) == 4 else []
        fixed = len(sides) == 2 and all(isinstance(v, int) for v in sides) and sides[0] == sides[1]
        self.fixed_side: int | None = int(sides[0]) if fixed else None
        """Side of the graph's fixed square input (a clients file), else ``None``."""
        self.variant: str = str(self.metadata.get("variant", "default"))
        """``"clients"`` (``v / 255`` in, probabilities out: :mod:`.clients`) or ``"default"``."""
        self._to_unit: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        if self.variant == "clients":
            self._to_unit = self._unit_map()

    @property
    def class_names(self) -> list[str] | None:
        """Class names in logit order, if the file records them (as ``{"0": name, …}``)."""
        names = self.metadata.get("class_names")
        if isinstance(names, dict):
            try:
                return [str(names[str(k)]) for k in range(len(names))]
            except KeyError:
                return None
        return list(names) if isinstance(names, list) else None

    def __repr__(self) -> str:
        model = self.metadata.get("model", "?")
        return f"OnnxBackend({str(self.path)!r}, model={model!r}, providers={self.providers})"

    def _unit_map(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(a, b)`` with ``v / 255 = a·n + b`` for a normalised input ``n`` (per channel)."""
        meta = self.metadata
        try:
            mean = np.asarray(meta["mean"], np.float64).reshape(1, -1, 1, 1)
            std = np.asarray(meta["std"], np.float64).reshape(1, -1, 1, 1)
            scale, offset = float(meta["scale"]), float(meta["offset"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{self.path.name}: clients file without its scaling ({err})") from err
        a = std * scale / 255.0
        b = (mean * scale - offset) / 255.0
        return a.astype(np.float32), b.astype(np.float32)

    def _fit_fixed(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Pad a window up to the graph's fixed side (reflect where it can, else replicate)."""
        side = self.fixed_side
        h, w = x.shape[-2:]
        if side is None or (h, w) == (side, side):
            return x
        if h > side or w > side:
            raise ValueError(
                f"{self.path.name} takes windows of at most {side}×{side} px, got {h}×{w}; "
                f"predict with --tile {side}"
            )
        pad_h, pad_w = side - h, side - w
        widths = ((0, 0), (0, 0), (0, pad_h), (0, pad_w))
        if pad_h < h and pad_w < w:
            return np.pad(x, widths, mode="reflect")
        return np.pad(x, widths, mode="edge")

    def _edge_pad(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], int, int]:
        """Replicate-pad inputs too small to reflect, as the PyTorch model does."""
        h, w = x.shape[-2:]
        m = self._multiple
        if m is None:
            return x, h, w
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_mode(pad_h, pad_w, h, w) == "reflect":
            return x, h, w  # the graph's own reflect padding applies
        return np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="edge"), h, w

    def __call__(self, x: NDArray[Any] | torch.Tensor) -> Any:
        """Logits ``B×K×H×W`` (float32) of a normalised ``B×C×H×W`` batch.

        A numpy input gets a numpy array back; a PyTorch tensor gets a tensor on its own device.

        Raises:
            TypeError: The input is not floating point (raw samples must be normalised first).
            ValueError: The input is not ``B×C×H×W`` with the model's channel count.
        """
        torch_module = sys.modules.get("torch")  # a tensor means torch is imported already
        tensor_device = None
        if torch_module is not None and isinstance(x, torch_module.Tensor):
            tensor: Any = x
            tensor_device = tensor.device
            if not tensor.is_floating_point():
                raise TypeError(f"expected a normalised float batch, got {tensor.dtype}")
            array = tensor.detach().cpu().float().numpy()
        else:
            array = np.asarray(x)
            if not np.issubdtype(array.dtype, np.floating):
                raise TypeError(f"expected a normalised float batch, got {array.dtype}")
            array = array.astype(np.float32, copy=False)
        if array.ndim != 4:
            raise ValueError(f"expected a B×C×H×W batch, got shape {tuple(array.shape)}")
        if self.in_channels is not None and array.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.path.name} takes {self.in_channels} channels, got {array.shape[1]}"
            )
        if self._to_unit is not None:  # a clients file: back to v / 255, probabilities out
            a, b = self._to_unit
            h, w = array.shape[-2:]
            array = np.ascontiguousarray(self._fit_fixed(array * a + b), dtype=np.float32)
            probabilities = self.session.run(None, {self.input_name: array})[0]
            # log p differs from the logits by one shift per pixel: same argmax, same blend.
            logits = np.log(np.maximum(probabilities, np.float32(1e-30)))
        else:
            array, h, w = self._edge_pad(np.ascontiguousarray(array))
            logits = self.session.run(None, {self.input_name: array})[0]
        out = np.ascontiguousarray(logits[..., :h, :w])
        if tensor_device is None or torch_module is None:
            return out
        return torch_module.from_numpy(out).to(tensor_device)
