"""Run directories: the weights and the configuration that rebuild a trained model.

``config.json`` (:class:`RunConfig`, from the torch-free :mod:`lale.run_config`) and
``model.safetensors`` are written atomically and loaded from JSON and safetensors only, never
unpickled; bad input raises :class:`RunError` naming the file. The whole directory:
docs/design.md#run-directories.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lale import run_layout
from lale.atomic import write_json_atomic
from lale.errors import RunError
from lale.run_config import (
    CONFIG_NAME,
    CONFIG_VERSION,
    RunConfig,
    load_config,
    save_config,
)
from lale.weights import load_weights, save_weights

__all__ = [
    "CONFIG_NAME",
    "CONFIG_VERSION",
    "WEIGHTS_NAME",
    "RunConfig",
    "RunError",
    "load_config",
    "load_run",
    "load_weights",
    "save_config",
    "save_run",
    "save_weights",
    "write_json_atomic",
]

WEIGHTS_NAME = run_layout.WEIGHTS


def save_run(run_dir: str | Path, model: nn.Module, config: RunConfig) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``run_dir`` (created if needed).

    Weights are written first, so a ``config.json`` never describes weights that are not there.

    Returns:
        The run directory.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, run_dir / WEIGHTS_NAME)
    save_config(run_dir / CONFIG_NAME, config)
    return run_dir


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """Rebuild a model from a run directory and load its weights.

    Args:
        run_dir: Folder holding ``config.json`` and ``model.safetensors``.
        device: Where to put the model.

    Returns:
        ``(model, config)``, the model in eval mode.

    Raises:
        RunError: Missing folder or files, invalid config, unknown model name or arguments,
            or weights that do not match the architecture; the message names the file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(run_dir, "run directory not found")
    config_path = run_dir / CONFIG_NAME
    config = load_config(config_path)
    weights_path = run_dir / WEIGHTS_NAME
    if not weights_path.is_file():
        raise RunError(weights_path, "weights file not found")
    from lale.models.registry import create_model

    try:
        model = create_model(
            config.model, config.num_classes, config.in_channels, **config.model_kwargs
        )
    except (ValueError, TypeError) as err:
        raise RunError(config_path, f"cannot build model {config.model!r} ({err})") from err
    except ImportError as err:
        raise RunError(
            config_path, f"model {config.model!r} needs a missing package ({err})"
        ) from err
    load_weights(model, weights_path)
    if (classes := config.schema().num_classes) != config.num_classes:
        raise RunError(
            config_path, f"class schema has {classes} classes, the model {config.num_classes}"
        )
    return model.to(device).eval(), config
