"""Forward-pass speed: throughput (images/s at a fixed batch) and batch-1 latency.

Protocol: model in eval mode under ``torch.inference_mode()``, a fixed random input, ``warmup``
untimed passes, then ``repeats`` timed passes; the reported value is the median. On CUDA the
device is synchronised before and after every timed pass. Optional bf16 autocast and
channels-last memory format are the usual GPU inference settings; they also run on CPU.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from lale.profiling.environment import resolve_device

__all__ = ["DType", "TimingConfig", "TimingResult", "time_forward", "time_model", "time_models"]

DType = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class TimingConfig:
    """How to time a model (also defines the input used to count MACs).

    Attributes:
        size: Input height = width in pixels.
        in_channels: Input bands.
        batch_size: Batch for the throughput measurement (latency always uses batch 1).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"fp32"``, or ``"bf16"`` for ``torch.autocast`` with bfloat16 (weights stay fp32).
        channels_last: Convert model and input to ``torch.channels_last``.
        warmup: Untimed passes before timing (per measurement).
        repeats: Timed passes; the median is reported.
        latency: Also measure batch-1 latency.
        cudnn_benchmark: Let cuDNN pick the fastest kernels (CUDA only; restored afterwards).
    """

    size: int = 256
    in_channels: int = 3
    batch_size: int = 16
    device: str = "cpu"
    dtype: DType = "fp32"
    channels_last: bool = False
    warmup: int = 3
    repeats: int = 10
    latency: bool = True
    cudnn_benchmark: bool = True

    def __post_init__(self) -> None:
        if self.size < 1 or self.in_channels < 1 or self.batch_size < 1:
            raise ValueError("size, in_channels and batch_size must be positive")
        if self.warmup < 0 or self.repeats < 1:
            raise ValueError("warmup must be >= 0 and repeats >= 1")
        if self.dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {self.dtype!r}")


@dataclass(frozen=True)
class TimingResult:
    """Speed of one model under one :class:`TimingConfig`.

    Attributes:
        throughput: Images per second at ``batch_size`` (``batch_size / median time``).
        latency_ms: Median batch-1 forward time in milliseconds (``None`` if not measured).
        batch_times_s: Every timed batch pass, seconds, in order (for spread / drift checks).
        latency_times_s: Every timed batch-1 pass, seconds.
    """

    throughput: float
    latency_ms: float | None
    batch_times_s: list[float] = field(default_factory=list)
    latency_times_s: list[float] = field(default_factory=list)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _cudnn_benchmark(enabled: bool) -> Iterator[None]:
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def _autocast(device: torch.device, dtype: DType) -> contextlib.AbstractContextManager[None]:
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_forward(
    model: nn.Module,
    x: torch.Tensor,
    *,
    warmup: int,
    repeats: int,
    dtype: DType = "fp32",
) -> list[float]:
    """Wall-clock seconds of ``repeats`` forward passes of ``model(x)`` after ``warmup`` passes.

    ``model`` and ``x`` must already be on the same device (and memory format). Runs under
    ``torch.inference_mode()`` and, for ``dtype="bf16"``, bfloat16 autocast.
    """
    device = x.device
    times: list[float] = []
    with torch.inference_mode(), _autocast(device, dtype):
        for _ in range(warmup):
            model(x)
        _synchronize(device)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            _synchronize(device)
            times.append(time.perf_counter() - start)
    return times


def _prepare(model: nn.Module, config: TimingConfig, device: torch.device) -> nn.Module:
    model.eval()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def _input(config: TimingConfig, batch: int, device: torch.device) -> torch.Tensor:
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    shape = (batch, config.in_channels, config.size, config.size)
    return torch.randn(shape, device=device).contiguous(memory_format=memory_format)


def _result(config: TimingConfig, batch_times: list[float], latency: list[float]) -> TimingResult:
    return TimingResult(
        throughput=config.batch_size / statistics.median(batch_times),
        latency_ms=1e3 * statistics.median(latency) if latency else None,
        batch_times_s=batch_times,
        latency_times_s=latency,
    )


def time_model(model: nn.Module, config: TimingConfig) -> TimingResult:
    """Measure throughput (and batch-1 latency) of ``model`` as ``config`` says.

    The model is put in eval mode and moved to ``config.device`` (and to channels-last if asked)
    in place; callers that need it unchanged should pass a copy.

    Raises:
        DeviceUnavailableError: ``config.device`` is CUDA but CUDA is unavailable.
    """
    return time_models({"model": model}, config)["model"]


def time_models(models: Mapping[str, nn.Module], config: TimingConfig) -> dict[str, TimingResult]:
    """Time several models in interleaved rounds: each round times one pass of every model.

    On a shared machine the load changes while a benchmark runs; timing the models one after
    another lets such a change favour whichever model ran in the quiet part. In rounds, every
    model sees the same conditions, so their ratios stay meaningful. Models are prepared in
    place as in :func:`time_model`.

    Raises:
        DeviceUnavailableError: ``config.device`` is CUDA but CUDA is unavailable.
    """
    device = resolve_device(config.device)
    prepared = {name: _prepare(m, config, device) for name, m in models.items()}
    sizes = list(dict.fromkeys([config.batch_size] + ([1] if config.latency else [])))
    times: dict[int, dict[str, list[float]]] = {b: {n: [] for n in prepared} for b in sizes}
    cudnn = _cudnn_benchmark(config.cudnn_benchmark) if device.type == "cuda" else None
    with cudnn or contextlib.nullcontext():
        for batch in sizes:
            x = _input(config, batch, device)
            for model in prepared.values():
                time_forward(model, x, warmup=config.warmup, repeats=0, dtype=config.dtype)
            for _ in range(config.repeats):
                for name, model in prepared.items():
                    times[batch][name] += time_forward(
                        model, x, warmup=0, repeats=1, dtype=config.dtype
                    )
    latency = times.get(1, {}) if config.latency else {}
    return {
        name: _result(config, times[config.batch_size][name], latency.get(name, []))
        for name in prepared
    }
