"""Quick static summary of registered models: parameters and GMACs, no timing.

Used by ``lale models``, which lists every registered model and must stay fast. Each model is
first built with its weights on the ``meta`` device (:func:`~lale.profiling.counting.meta_weights`:
no memory, no weight initialisation) and its MACs counted there from shapes alone; models that
cannot be built or run that way are built for real on CPU and counted with one batch-1 forward
pass. Both paths give the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from lale.models.registry import create_model, get_entry, list_models
from lale.profiling.counting import count_macs, count_parameters, meta_weights

__all__ = ["ModelSummary", "summarize_model", "summarize_models"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSummary:
    """Static costs of one registered model.

    Attributes:
        name: Registry name.
        family: ``"lale"`` or ``"baseline"``.
        description: The registry's one-line description.
        params: Number of parameters (``None`` if the model could not be built).
        macs: MACs of one ``1×C×size×size`` forward pass (``None`` if unavailable).
        size: Input height = width used for ``macs``.
        error: One-line reason when the model could not be built or counted.
    """

    name: str
    family: str
    description: str
    params: int | None
    macs: int | None
    size: int
    error: str | None = None

    @property
    def gmacs(self) -> float | None:
        """MACs in units of 1e9 (``None`` if unavailable)."""
        return None if self.macs is None else self.macs / 1e9


def _count(name: str, size: int, in_channels: int, num_classes: int, meta: bool) -> tuple[int, int]:
    with meta_weights() if meta else contextlib.nullcontext():
        model = create_model(name, num_classes=num_classes, in_channels=in_channels)
    return count_parameters(model), count_macs(model, size, in_channels, try_meta=meta)


def summarize_model(
    name: str, size: int = 256, *, in_channels: int = 3, num_classes: int = 7
) -> ModelSummary:
    """Parameters and MACs of the registered model ``name`` at ``size × size``.

    Build or counting failures (e.g. a missing optional dependency) are reported in
    :attr:`ModelSummary.error` rather than raised; unknown names still raise
    :class:`~lale.models.registry.UnknownModelError`.
    """
    entry = get_entry(name)
    params: int | None = None
    macs: int | None = None
    error: str | None = None
    try:
        params, macs = _count(name, size, in_channels, num_classes, meta=True)
    except Exception as meta_err:  # the meta path is a shortcut only; retry for real
        _log.debug("meta-device summary of %s failed (%s); building on CPU", name, meta_err)
        try:
            params, macs = _count(name, size, in_channels, num_classes, meta=False)
        except Exception as err:  # reported per model in the table instead of aborting it
            error = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return ModelSummary(
        name=name,
        family=entry.family,
        description=entry.description,
        params=params,
        macs=macs,
        size=size,
        error=error,
    )


def summarize_models(
    names: Sequence[str] | None = None,
    size: int = 256,
    *,
    in_channels: int = 3,
    num_classes: int = 7,
    progress: bool = False,
    console: Console | None = None,
) -> list[ModelSummary]:
    """:func:`summarize_model` for ``names`` (default: every registered model, in order)."""
    names = list(list_models()) if names is None else list(names)
    summaries: list[ModelSummary] = []
    spinner = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=console or Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    with spinner:
        task = spinner.add_task("counting", total=len(names))
        for name in names:
            spinner.update(task, description=f"counting {escape(name)}")
            summaries.append(
                summarize_model(name, size, in_channels=in_channels, num_classes=num_classes)
            )
            spinner.advance(task)
    return summaries
