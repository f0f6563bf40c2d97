"""Run an exported model (``lale export``) with onnxruntime, as a drop-in for the PyTorch one.

:class:`OnnxBackend` maps a normalised float32 ``B×C×H×W`` batch of any shape to ``B×K×H×W``
logits, edge-padding sides of 16 px or less itself as PyTorch would (docs/design.md#onnx-export).
:func:`~lale.inference.onnx.io.read_metadata` decodes the run's metadata embedded in the file.
numpy in, numpy out, and no PyTorch import: ``lale predict --model FILE.onnx`` runs on it alone
(a PyTorch tensor is still accepted, and answered with one).
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
        array, h, w = self._edge_pad(np.ascontiguousarray(array))
        logits = self.session.run(None, {self.input_name: array})[0]
        out = np.ascontiguousarray(logits[..., :h, :w])
        if tensor_device is None or torch_module is None:
            return out
        return torch_module.from_numpy(out).to(tensor_device)
