"""Profile several registered models in one run and compare them, as ratios, to a reference.

Comparisons are made only between models measured in the same run, against a reference model
(UPerNet by default), and every ratio is oriented so that > 1 means better than the reference
(docs/design.md#efficiency).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from torch import nn

from lale.errors import WorkFailedError, one_line
from lale.models.registry import create_model, get_entry, model_kwargs
from lale.profiling.counting import count_macs, count_parameters, storage_bytes
from lale.profiling.environment import EnvironmentInfo, collect_environment, resolve_device
from lale.profiling.timing import TimingConfig, TimingResult, time_model, time_models

__all__ = [
    "ModelProfile",
    "ProfileRun",
    "ProfilingError",
    "Ratios",
    "compute_ratios",
    "profile_models",
    "profile_module",
    "write_json",
]

DEFAULT_REFERENCE = "upernet"


class ProfilingError(WorkFailedError):
    """A model failed to build, count or run; the message names the model."""


@dataclass(frozen=True)
class ModelProfile:
    """Costs and speed of one model.

    Attributes:
        name: Registry name (``"arch:encoder"`` allowed) or any label for ad-hoc modules.
        family: Registry family (``"lale"`` / ``"baseline"``), ``""`` for ad-hoc modules.
        params: Number of parameters.
        storage_bytes: Size of the fp32 safetensors weights file.
        macs: Multiply-accumulates of one ``1×C×size×size`` forward pass.
        throughput: Images/s at the run's batch size.
        latency_ms: Median batch-1 forward time (``None`` if not measured).
        batch_times_s: Every timed batch pass in seconds, in order (to judge noise and drift).
        latency_times_s: Every timed batch-1 pass in seconds.
    """

    name: str
    family: str
    params: int
    storage_bytes: int
    macs: int
    throughput: float
    latency_ms: float | None
    batch_times_s: tuple[float, ...] = ()
    latency_times_s: tuple[float, ...] = ()

    @property
    def gmacs(self) -> float:
        """MACs in units of 1e9."""
        return self.macs / 1e9


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Ratios:
    """A model against a reference; every value > 1 means the model is better.

    Attributes:
        reference: Name of the reference model.
        params: reference params ÷ model params ("× fewer parameters").
        storage: reference storage ÷ model storage ("× less storage").
        gmacs: reference GMACs ÷ model GMACs ("× fewer GMACs").
        throughput: model images/s ÷ reference images/s ("× higher throughput").
        latency: reference latency ÷ model latency ("× faster at batch 1").
    """

    reference: str
    params: float | None
    storage: float | None
    gmacs: float | None
    throughput: float | None
    latency: float | None


def compute_ratios(model: ModelProfile, reference: ModelProfile) -> Ratios:
    """Ratios of ``model`` against ``reference`` (``None`` where a value is zero or missing)."""
    return Ratios(
        reference=reference.name,
        params=_ratio(reference.params, model.params),
        storage=_ratio(reference.storage_bytes, model.storage_bytes),
        gmacs=_ratio(reference.macs, model.macs),
        throughput=_ratio(model.throughput, reference.throughput),
        latency=_ratio(reference.latency_ms, model.latency_ms),
    )


@dataclass(frozen=True)
class ProfileRun:
    """Every model measured in one run, with the run's settings and environment.

    Attributes:
        environment: Device, threads, versions and date of the run.
        config: Input size, batch, device, dtype, … shared by all models.
        num_classes: Output classes the models were built with.
        reference: Name of the reference model for ratios (``None``: no ratios).
        profiles: One entry per successfully profiled model, in run order.
        failures: Model name → one-line error for models that could not be profiled.
    """

    environment: EnvironmentInfo
    config: TimingConfig
    num_classes: int
    reference: str | None
    profiles: list[ModelProfile]
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> ModelProfile:
        """The profile of ``name``; ``KeyError`` if it was not (successfully) profiled."""
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(f"{name!r} is not in this run")

    def ratios(self, reference: str | None = None) -> dict[str, Ratios]:
        """Ratios of every model against ``reference`` (default: the run's reference).

        Returns an empty dict when there is no reference or it failed to profile.
        """
        ref_name = reference if reference is not None else self.reference
        if ref_name is None:
            return {}
        try:
            ref = self.get(ref_name)
        except KeyError:
            return {}
        return {p.name: compute_ratios(p, ref) for p in self.profiles}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description of the run (ratios included)."""
        ratios = self.ratios()
        models = []
        for p in self.profiles:
            entry: dict[str, Any] = asdict(p)
            entry["gmacs"] = p.gmacs
            if p.name in ratios:
                r = asdict(ratios[p.name])
                r.pop("reference")
                entry["ratios"] = r
            models.append(entry)
        return {
            "environment": asdict(self.environment),
            "settings": {**asdict(self.config), "num_classes": self.num_classes},
            "reference": self.reference,
            "ratio_convention": "every ratio > 1 means better than the reference: params, "
            "storage, gmacs and latency are reference / model; throughput is model / reference",
            "models": models,
            "failures": dict(self.failures),
        }


def write_json(run: ProfileRun, path: str | Path) -> Path:
    """Write :meth:`ProfileRun.to_dict` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class _Counts:
    params: int
    storage: int
    macs: int


def _count(model: nn.Module, config: TimingConfig) -> _Counts:
    return _Counts(
        params=count_parameters(model),
        storage=storage_bytes(model),
        macs=count_macs(model, config.size, config.in_channels),
    )


def _profile(name: str, family: str, counts: _Counts, timing: TimingResult) -> ModelProfile:
    return ModelProfile(
        name=name,
        family=family,
        params=counts.params,
        storage_bytes=counts.storage,
        macs=counts.macs,
        throughput=timing.throughput,
        latency_ms=timing.latency_ms,
        batch_times_s=tuple(timing.batch_times_s),
        latency_times_s=tuple(timing.latency_times_s),
    )


def profile_module(
    model: nn.Module, name: str, config: TimingConfig, *, family: str = ""
) -> ModelProfile:
    """Count and time one model.

    Parameters, storage and MACs are taken on the model as given (normally fp32 on CPU); then
    the model is timed, which moves it to ``config.device`` and puts it in eval mode in place.
    """
    counts = _count(model, config)
    return _profile(name, family, counts, time_model(model, config))


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _run_order(names: Sequence[str], reference: str | None) -> list[str]:
    ordered = list(dict.fromkeys(names))  # drop duplicates, keep order
    if reference is not None and reference not in ordered:
        ordered.insert(0, reference)
    return ordered


def _one_line(err: BaseException) -> str:
    text = one_line(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def profile_models(
    names: Sequence[str],
    config: TimingConfig,
    *,
    reference: str | None = DEFAULT_REFERENCE,
    num_classes: int = 7,
    on_error: Literal["raise", "skip"] = "raise",
    progress: bool = True,
    console: Console | None = None,
    interleave: bool = True,
) -> ProfileRun:
    """Build, count and time registered models in this process.

    Args:
        names: Registry names (``"arch:encoder"`` allowed). Duplicates are measured once.
        config: Input and timing settings shared by all models.
        reference: Model the ratios are computed against; added to the run (first) if it is
            not in ``names``. ``None`` for no ratios.
        num_classes: Output classes to build the models with.
        on_error: ``"raise"`` stops at the first model that fails to build or run;
            ``"skip"`` records it in :attr:`ProfileRun.failures` and goes on.
        progress: Show a rich progress bar (on stderr) while models are measured.
        console: Console for the progress bar (default: a new stderr console).
        interleave: Build every model first, then time them in interleaved rounds
            (:func:`~lale.profiling.timing.time_models`), so that load changes on a shared
            machine hit all models alike. ``False`` times one model at a time (less memory).

    Raises:
        UnknownModelError: A name is not registered (checked before anything is measured).
        ProfilingError: A model failed to build or run (only with ``on_error="raise"``).
        DeviceUnavailableError: ``config.device`` cannot be used here.
    """
    order = _run_order(names, reference)
    for name in sorted(order, key=lambda n: n == reference):  # the user's names first
        model_kwargs(name)  # raises for unknown names and invalid "arch:encoder" names
    families = {name: get_entry(name).family for name in order}
    device = resolve_device(config.device)
    environment = collect_environment(device)

    profiles: list[ModelProfile] = []
    failures: dict[str, str] = {}
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    built: dict[str, tuple[nn.Module | None, _Counts]] = {}
    with bar:
        task = bar.add_task("profiling", total=len(order) + (1 if interleave else 0))
        for name in order:
            bar.update(task, description=f"profiling [bold]{escape(name)}[/]")
            model: nn.Module | None = None
            try:
                model = create_model(name, num_classes=num_classes, in_channels=config.in_channels)
                counts = _count(model, config)
                if interleave:
                    built[name] = (model, counts)
                else:
                    profiles.append(
                        _profile(name, families[name], counts, time_model(model, config))
                    )
            except Exception as err:  # per-model isolation is the point of on_error="skip"
                if on_error == "raise":
                    raise ProfilingError(f"could not profile {name!r}: {_one_line(err)}") from err
                failures[name] = _one_line(err)
            finally:
                model = None
                if not interleave:
                    _release(device)
            bar.advance(task)
        if interleave and built:
            bar.update(task, description=f"timing {len(built)} models in interleaved rounds")
            timings = time_models({n: m for n, (m, _) in built.items() if m is not None}, config)
            for name, (_, counts) in built.items():
                profiles.append(_profile(name, families[name], counts, timings[name]))
            built.clear()
            _release(device)
            bar.advance(task)
    return ProfileRun(
        environment=environment,
        config=config,
        num_classes=num_classes,
        reference=reference,
        profiles=profiles,
        failures=failures,
    )
