"""The model registry: every network lale can build, by name.

Variants are data: a registry entry is a name, a builder and the keyword arguments that make
the variant. ``create_model`` builds randomly initialised networks and never touches the network
unless asked for a baseline's ImageNet weights (``pretrained=True``). This module imports no
model module: the package's ``__init__`` imports them after it, and they register their models
on import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from torch import nn

from lale.errors import UsageError
from lale.models.pretrained import ensure_cached

log = logging.getLogger(__name__)

Family = Literal["lale", "baseline", "frontier"]
Builder = Callable[..., nn.Module]


class UnknownModelError(UsageError):
    """Raised for a model name that is not registered; the message lists the valid ones."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: Registry name, e.g. ``"lale_t"`` or ``"upernet"``.
        builder: Callable ``builder(num_classes=..., in_channels=..., **kwargs) -> nn.Module``.
        family: ``"lale"`` for LALE variants, ``"baseline"`` for the paper's comparison models
            (SMP/timm), ``"frontier"`` for the light segmentation networks written here
            (TopFormer, SeaFormer, EfficientViT-Seg, UNetFormer).
        description: One line for tables and ``--help``.
        defaults: Keyword arguments that define the variant; overrides are merged on top.
        requires: Optional extra needed to build it (e.g. ``"baselines"``), for error messages.
    """

    name: str
    builder: Builder
    family: Family
    description: str
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    requires: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    builder: Builder,
    *,
    family: Family,
    description: str,
    requires: str | None = None,
    **defaults: Any,
) -> ModelEntry:
    """Register ``builder`` under ``name`` with the variant-defining ``defaults``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    entry = ModelEntry(
        name=name,
        builder=builder,
        family=family,
        description=description,
        defaults=MappingProxyType(dict(defaults)),
        requires=requires,
    )
    _REGISTRY[name] = entry
    return entry


def list_models(family: Family | None = None) -> list[str]:
    """Names of all registered models (optionally one family), in registration order."""
    return [n for n, e in _REGISTRY.items() if family is None or e.family == family]


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (without any ``:encoder`` suffix)."""
    base = name.split(":", 1)[0]
    if base not in _REGISTRY:
        valid = ", ".join(_REGISTRY)
        raise UnknownModelError(f"unknown model {name!r}; registered models: {valid}")
    return _REGISTRY[base]


def model_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    """The full keyword arguments ``create_model(name, **overrides)`` passes to the builder.

    ``"arch:encoder"`` is shorthand for ``encoder_name="encoder"``; ``None`` values are dropped
    so callers can forward optional CLI options unchanged.
    """
    entry = get_entry(name)
    kwargs = dict(entry.defaults)
    if ":" in name:
        encoder = name.split(":", 1)[1]
        if "encoder_name" not in entry.defaults:
            raise UnknownModelError(
                f"model {entry.name!r} has no selectable encoder, so {name!r} is not valid"
            )
        if overrides.get("encoder_name") not in (None, encoder):
            raise ValueError(
                f"{name!r} names encoder {encoder!r} but encoder_name="
                f"{overrides['encoder_name']!r} was also given"
            )
        kwargs["encoder_name"] = encoder
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs


def check_pretrained(name: str) -> None:
    """Refuse ``pretrained`` for a model family that has no published ImageNet weights.

    Raises:
        UsageError: ``name`` is not a baseline (one line, pointing to ``--init``).
    """
    entry = get_entry(name)
    if entry.family == "frontier":
        raise UsageError(
            f"{entry.name}: lale builds the frontier models from their papers and loads none of "
            "their authors' weights, so --pretrained applies to baselines only; start from a "
            "trained run or weights file with --init RUN_DIR|FILE.safetensors"
        )
    if entry.family != "baseline":
        raise UsageError(
            f"{entry.name}: LALE has no published ImageNet weights, so --pretrained applies to "
            "baselines only; pretrain its encoder with lale pretrain, or start from a run, a "
            "weights file or a hub repository with --init RUN_DIR|FILE.safetensors|hf-hub:ORG/NAME"
        )


def ensure_model_weights(name: str, overrides: Mapping[str, Any] | None = None) -> None:
    """Have the ImageNet weights of the registered model ``name``'s encoder cached.

    :func:`~lale.models.pretrained.ensure_cached` for its encoder, after
    :func:`check_pretrained`.

    Raises:
        UsageError: ``name`` is not a baseline, or its encoder has no ImageNet weights.
        UnavailableError: As :func:`~lale.models.pretrained.ensure_cached`.
    """
    check_pretrained(name)
    encoder = model_kwargs(name, **dict(overrides or {})).get("encoder_name")
    if isinstance(encoder, str):
        ensure_cached(encoder)


def create_model(
    name: str,
    num_classes: int = 7,
    in_channels: int = 3,
    *,
    pretrained: bool | str = False,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, randomly initialised (or from pretrained weights).

    Args:
        name: A name from :func:`list_models`; baselines accept ``"arch:encoder"``
            (e.g. ``"upernet:efficientnet-b0"``).
        num_classes: Number of output classes (logit channels).
        in_channels: Number of input bands.
        pretrained: ``True`` (baselines only): start the encoder from its ImageNet weights,
            taken from the local Hugging Face cache (fetched first if missing and possible).
            ``"hf-hub:ORG/NAME"`` (any model): load the tensors of that repository that match
            by name and shape — an encoder from ``lale pretrain`` or a whole trained model
            from ``lale hub push`` (:mod:`lale.models.transfer`; cached repositories load
            offline).
        **overrides: Keyword arguments merged over the variant's defaults; ``None`` is dropped.

    Returns:
        A ``nn.Module`` mapping ``B x in_channels x H x W`` to ``B x num_classes x H x W`` logits.

    Raises:
        UnknownModelError: ``name`` is not registered (the message lists valid names).
        UsageError: ``pretrained=True`` for a model without published ImageNet weights (LALE),
            or a hub repository none of whose tensors fit.
        UnavailableError: The weights are neither cached nor fetchable.
    """
    entry = get_entry(name)
    kwargs = model_kwargs(name, **overrides)
    if isinstance(pretrained, str):
        from lale.models.transfer import is_hub_source, load_matching, read_donor, resolve_source

        if not is_hub_source(pretrained):
            raise UsageError(f"pretrained={pretrained!r}: give True or 'hf-hub:ORG/NAME'")
        model = entry.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
        taken, fresh = load_matching(model, read_donor(resolve_source(pretrained)))
        log.info("%s: %d tensors loaded, %d left fresh", pretrained, len(taken), len(fresh))
        return model
    if pretrained:
        check_pretrained(name)
        kwargs["pretrained"] = True
    return entry.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
