"""Where a measurement was taken: device, thread count, library versions and date.

Benchmark numbers are meaningless without their context, so every profile carries an
:class:`EnvironmentInfo`. Library versions are read from the installed distributions' metadata,
never by importing them (importing timm or SMP is slow and may need extra setup).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import torch

from lale.errors import UnavailableError, UsageError

__all__ = [
    "DeviceUnavailableError",
    "EnvironmentInfo",
    "collect_environment",
    "cpu_name",
    "lale_version",
    "package_versions",
    "resolve_device",
]

#: Distributions whose versions are recorded with every result (distribution name → key).
_PACKAGES: dict[str, str] = {
    "torch": "torch",
    "lale": "lale",
    "segmentation-models-pytorch": "smp",
    "timm": "timm",
    "numpy": "numpy",
}


class DeviceUnavailableError(UnavailableError):
    """Raised when the requested device (e.g. ``cuda``) is not available on this machine."""


def resolve_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check it can be used here.

    Raises:
        DeviceUnavailableError: CUDA was requested but is unavailable, or the index is too high;
            the message is one line, fit for a command-line error.
        UsageError: ``device`` is not a valid device string, or is a type lale does not time.
    """
    try:
        dev = torch.device(device)
    except RuntimeError as err:  # torch's own message for a device type it does not know
        raise UsageError(f"unsupported device {str(device)!r} ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {str(device)!r} requested but CUDA is not available "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {str(device)!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device {str(device)!r}; use 'cpu' or 'cuda[:N]'")
    return dev


def cpu_name() -> str:
    """The CPU model name (from ``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def lale_version() -> str:
    """The installed version of lale (``"unknown"`` when run from an uninstalled tree)."""
    try:
        return metadata.version("lale")
    except metadata.PackageNotFoundError:
        return "unknown"


def distribution_versions(*dists: str) -> dict[str, str | None]:
    """The installed version of each distribution, by name (``None`` if not installed)."""
    versions: dict[str, str | None] = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def package_versions() -> dict[str, str | None]:
    """Versions of python and of the libraries that affect results (``None`` if not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    installed = distribution_versions(*_PACKAGES)
    versions |= {key: installed[dist] for dist, key in _PACKAGES.items()}
    versions["torch"] = torch.__version__  # the running one, e.g. "2.13.0+cpu"
    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = (
        str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    )
    return versions


@dataclass(frozen=True)
class EnvironmentInfo:
    """The context of a measurement.

    Attributes:
        device: Human-readable name of the device that ran the timings (CPU model or GPU name).
        device_type: ``"cpu"`` or ``"cuda"``.
        cpu: CPU model name (recorded even for GPU runs: it feeds the GPU).
        gpu: GPU name for CUDA runs, else ``None``.
        cpu_count: Logical CPUs visible to this process.
        torch_threads: ``torch.get_num_threads()`` when the environment was collected.
        platform: OS and architecture string.
        versions: ``python``, ``torch``, ``lale``, ``smp``, ``timm``, ``numpy``, ``cuda`` and
            ``cudnn`` versions (``None`` where not installed).
        date: ISO-8601 UTC timestamp.
    """

    device: str
    device_type: str
    cpu: str
    gpu: str | None
    cpu_count: int
    torch_threads: int
    platform: str
    versions: dict[str, str | None] = field(default_factory=dict)
    date: str = ""


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def collect_environment(device: str | torch.device = "cpu") -> EnvironmentInfo:
    """Describe this machine for a measurement run on ``device``."""
    dev = resolve_device(device)
    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    return EnvironmentInfo(
        device=gpu if gpu is not None else cpu,
        device_type=dev.type,
        cpu=cpu,
        gpu=gpu,
        cpu_count=_cpu_count(),
        torch_threads=torch.get_num_threads(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()} ({sys.platform})",
        versions=package_versions(),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
