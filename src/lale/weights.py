"""Model weights as safetensors: fp32, no pickle, checked against the architecture on load."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from lale.atomic import write_bytes_atomic
from lale.errors import RunError

__all__ = ["load_weights", "save_weights"]


def _fp32_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the state dict, floats as fp32; tied tensors stored once."""
    state: dict[str, torch.Tensor] = {}
    seen: set[tuple[Any, ...]] = set()
    for name, tensor in model.state_dict().items():
        key = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if tensor.numel() and key in seen:
            continue  # an alias (tied weights); load_weights restores it through the model
        seen.add(key)
        t = tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else None)
        state[name] = t.contiguous().clone()
    return state


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Write the model's state as fp32 safetensors to ``path``, atomically."""
    data = safetensors.torch.save(_fp32_state(model), metadata={"format": "pt"})
    write_bytes_atomic(Path(path), data)


def _brief(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a safetensors file into ``model`` (in place) after checking it fits.

    Raises:
        RunError: The file is missing or unreadable, or its tensors do not match the model's
            (missing or unexpected names, or other shapes; the first few are listed).
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(path, "weights file not found")
    try:
        state = safetensors.torch.load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(path, f"not a readable safetensors file ({err})") from err
    expected = model.state_dict()
    # A name absent from the file is fine if it is a tied alias of a loaded tensor.
    loaded = {expected[k].untyped_storage().data_ptr() for k in state if k in expected}
    missing = [
        k
        for k, t in expected.items()
        if k not in state and not (t.numel() and t.untyped_storage().data_ptr() in loaded)
    ]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_brief(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_brief(unexpected)})")
    if shapes:
        problems.append(f"{len(shapes)} of another shape ({_brief(shapes)})")
    if problems:
        raise RunError(path, "weights do not match the architecture: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)
    return model
