"""Static model costs: parameters, on-disk storage and multiply-accumulates (MACs).

MACs are :class:`torch.utils.flop_counter.FlopCounterMode` FLOPs ÷ 2, counted under the math
attention backend so attention's matrix products are included, on the ``meta`` device where the
model allows it (docs/design.md#efficiency).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence

import torch
from safetensors.torch import save_model
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules.module import (
    register_module_buffer_registration_hook,
    register_module_parameter_registration_hook,
)
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "count_macs", "count_parameters", "meta_weights", "storage_bytes"]

_log = logging.getLogger(__name__)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (trainable or not; tied parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def storage_bytes(model: nn.Module) -> int:
    """Size in bytes of the model's fp32 safetensors weights file.

    The state dict (parameters and persistent buffers) is written with
    :func:`safetensors.torch.save_model`, which stores shared/tied tensors once, to a temporary
    file whose size is returned. Floating-point tensors that are not fp32 are converted on a
    copy first, so the number is always the fp32 file size.

    Args:
        model: The model; it is not modified.

    Returns:
        The file size in bytes (header included), ≈ 4 bytes × parameters for fp32 models.
    """
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in model.state_dict().values()):
        model = copy.deepcopy(model).float()
    with tempfile.TemporaryDirectory(prefix="lale-storage-") as tmp:
        path = os.path.join(tmp, "model.safetensors")
        save_model(model, path)
        return os.path.getsize(path)


@contextlib.contextmanager
def meta_weights() -> Iterator[None]:
    """Build models with every parameter and buffer on the ``meta`` device.

    Inside the context each parameter or buffer is moved to ``meta`` as it is registered, so
    weight initialisation costs nothing and no memory is used, while the construction code
    itself runs normally on CPU (unlike ``with torch.device("meta")``, which breaks builders that
    compute plain numbers with tensors, e.g. ``torch.linspace(...).tolist()`` for drop-path
    rates). Tied parameters stay tied. The result can be counted (:func:`count_parameters`,
    :func:`count_macs`) but not run or saved.
    """

    def on_parameter(
        module: nn.Module, name: str, param: nn.Parameter | None
    ) -> nn.Parameter | None:
        if param is None or param.is_meta or type(param) is not nn.Parameter:
            return None
        return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    def on_buffer(module: nn.Module, name: str, buffer: torch.Tensor | None) -> torch.Tensor | None:
        if buffer is None or buffer.is_meta:
            return None
        return buffer.to("meta")

    # torch annotates these hooks as returning None, but documents (and honours) a returned
    # replacement tensor, which is the whole point here.
    handles = [
        register_module_parameter_registration_hook(on_parameter),  # type: ignore[arg-type]
        register_module_buffer_registration_hook(on_buffer),  # type: ignore[arg-type]
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _input_shape(input_size: int | Sequence[int], in_channels: int) -> tuple[int, ...]:
    if isinstance(input_size, int):
        return (1, in_channels, input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) != 2:
        raise ValueError(f"input_size must be an int or (height, width), got {input_size!r}")
    return (1, in_channels, *size)


def _run_counted(model: nn.Module, device: torch.device, shape: tuple[int, ...]) -> int:
    """Run one forward pass of ``model`` on ``device`` under the FLOP counter; total FLOPs."""
    x = torch.randn(shape, device=device)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.inference_mode():
        if device.type == "meta":
            tensors = {
                name: torch.empty_like(t, device=device)
                for name, t in (*model.named_parameters(), *model.named_buffers())
            }
            functional_call(model, tensors, (x,))
        else:
            model(x)
    return int(counter.get_total_flops())


def count_flops(
    model: nn.Module,
    input_size: int | Sequence[int] = 256,
    in_channels: int = 3,
    *,
    try_meta: bool = True,
) -> int:
    """FLOPs (2 per multiply-accumulate) of one forward pass on a ``1×C×H×W`` input.

    Args:
        model: The model; it is put in eval mode for the count and then restored.
        input_size: ``H = W`` as an int, or ``(H, W)``.
        in_channels: ``C``, the number of input bands.
        try_meta: First try a shape-only pass on the ``meta`` device (fast); fall back to a
            real pass on the model's device if the model cannot run there.

    Returns:
        Total FLOPs as counted by ``FlopCounterMode``, attention matrix products included.
    """
    shape = _input_shape(input_size, in_channels)
    was_training = model.training
    model.eval()
    try:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        if try_meta or device.type == "meta":
            try:
                return _run_counted(model, torch.device("meta"), shape)
            except Exception as err:  # meta execution is only a shortcut; any failure → real run
                if device.type == "meta":
                    raise
                _log.debug("meta-device FLOP count failed (%s); running for real", err)
        return _run_counted(model, device, shape)
    finally:
        model.train(was_training)


def count_macs(
    model: nn.Module,
    input_size: int | Sequence[int] = 256,
    in_channels: int = 3,
    *,
    try_meta: bool = True,
) -> int:
    """Multiply-accumulates of one forward pass on a ``1×C×H×W`` input (FLOPs ÷ 2).

    Divide by 1e9 for GMACs. See :func:`count_flops` for the arguments.
    """
    return count_flops(model, input_size, in_channels, try_meta=try_meta) // 2
