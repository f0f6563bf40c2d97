"""Weights from elsewhere: a pretraining run, a training run or a Hugging Face Hub repository.

A source is a folder or ``hf-hub:ORG/NAME[@REVISION]``. Hub repositories are read through
huggingface_hub's cache: a repository already there is used without a request (so it works
offline); one that is not is fetched with a short timeout, never under ``HF_HUB_OFFLINE=1``.

What a folder holds decides what is taken from it:

* ``lale pretrain`` runs and timm-format repositories (``config.json`` with an
  ``architecture``): the encoder tensors (``encoder.safetensors``, else the ``encoder.*``
  tensors of ``model.safetensors``); the decoder and classifier start fresh.
* ``lale train`` runs and repositories pushed from them (lale's ``config.json``): every tensor
  of ``model.safetensors``.

Tensors are matched by name and shape; :func:`load_matching` says how many were taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from lale.errors import UnavailableError, UsageError, cause_text
from lale.models.pretrained import CONNECT_TIMEOUT_S, hub_cache_dir, hub_offline

__all__ = ["HUB_PREFIX", "Donor", "is_hub_source", "load_matching", "read_donor", "resolve_source"]

HUB_PREFIX = "hf-hub:"


def is_hub_source(source: str | Path) -> bool:
    """Whether ``source`` names a Hugging Face Hub repository (``hf-hub:ORG/NAME``)."""
    return str(source).startswith(HUB_PREFIX)


def resolve_source(source: str | Path) -> Path:
    """The local folder of ``source``: itself, or the cached snapshot of a hub repository.

    Raises:
        UsageError: The folder does not exist, or the hub name is malformed.
        UnavailableError: The repository is not cached and cannot be fetched (one line saying
            how to place it).
    """
    if not is_hub_source(source):
        path = Path(source)
        if not path.is_dir():
            raise UsageError(f"{path}: not a folder (a run directory or hf-hub:ORG/NAME)")
        return path
    from huggingface_hub import snapshot_download

    repo, _, revision = str(source)[len(HUB_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageError(f"{source}: expected hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION")
    cache = hub_cache_dir()
    try:
        return Path(
            snapshot_download(
                repo, revision=revision or None, cache_dir=cache, local_files_only=True
            )
        )
    except Exception:  # not (completely) cached: fetch below, where allowed
        pass
    if hub_offline():
        why = "HF_HUB_OFFLINE is set"
    else:
        try:
            return Path(
                snapshot_download(
                    repo,
                    revision=revision or None,
                    cache_dir=cache,
                    etag_timeout=CONNECT_TIMEOUT_S,
                )
            )
        except Exception as err:  # any failure to fetch is the same answer
            why = cause_text(err)[:160]
    raise UnavailableError(
        f"{source}: not in the Hugging Face cache ({cache}) and not fetchable ({why}); on a "
        f"connected machine run 'hf download {repo}' and copy the cache here, "
        "or point HF_HOME at a cache that holds it"
    )


@dataclass(frozen=True)
class Donor:
    """Tensors to initialise a model from, and what they are.

    Attributes:
        state: Tensor name → tensor.
        kind: ``"encoder"`` (a pretraining run or timm repository) or ``"model"``.
        architecture: The model the tensors came from, as its source names it.
        note: A short description for messages (``"pretrained on 3 classes, top-1 0.91"``).
    """

    state: dict[str, torch.Tensor]
    kind: str
    architecture: str
    note: str


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise UsageError(f"{path}: not a readable safetensors file ({err})") from None


def read_donor(folder: Path) -> Donor:
    """The tensors ``folder`` offers (see the module docstring for which).

    Raises:
        UsageError: ``folder`` holds no ``config.json`` and weights lale can read.
    """
    config_path = folder / "config.json"
    try:
        config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{config_path}: no readable model config ({err})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{config_path}: not a JSON object")
    if "architecture" in config:  # timm's layout: a pretraining run or a timm repository
        encoder = folder / "encoder.safetensors"
        if encoder.is_file():
            state = _load(encoder)
        else:
            full = _load(folder / "model.safetensors")
            state = {k: v for k, v in full.items() if k.startswith("encoder.")}
        note = f"{config.get('num_classes', '?')}-class classifier"
        metrics = folder / "val_metrics.json"
        if metrics.is_file():
            try:
                top1 = json.loads(metrics.read_text(encoding="utf-8")).get("top1")
                note += f", val top-1 {float(top1):.3f}"
            except (OSError, ValueError, TypeError):
                pass
        return Donor(state, "encoder", str(config["architecture"]), note)
    if "model" in config and "num_classes" in config:  # a lale training run
        state = _load(folder / "model.safetensors")
        note = f"{config['num_classes']}-class {config['model']} run"
        return Donor(state, "model", str(config["model"]), note)
    raise UsageError(f"{config_path}: neither a lale run config nor a timm config")


def load_matching(model: nn.Module, donor: Donor) -> tuple[list[str], list[str]]:
    """Copy every donor tensor whose name and shape match one of ``model``'s.

    Returns:
        ``(taken, fresh)``: the names loaded and the model's names left as they were.

    Raises:
        UsageError: No tensor matched (the donor is another architecture).
    """
    own = model.state_dict()
    taken = {k: v for k, v in donor.state.items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise UsageError(
            f"none of the {len(donor.state)} tensors of the {donor.architecture} weights match "
            "this model by name and shape (another architecture?)"
        )
    model.load_state_dict(taken, strict=False)
    return sorted(taken), sorted(set(own) - set(taken))
