"""The errors lale raises on purpose, and the exit code of each kind.

Every error lale raises for a reason a user can act on derives from :class:`LaleError`: its
``str()`` is one line fit for a terminal, and :attr:`LaleError.exit_code` is what the ``lale``
command exits with. Anything else that escapes a command is a bug and shows its traceback.

| code | meaning |
|---:|---|
| 0 | success |
| 1 | the work failed: some inputs failed, training diverged, a check did not pass |
| 2 | bad usage or bad input: an option, a model name, a data file, a run directory |
| 3 | something this machine lacks: a device, an optional dependency, a file not downloaded |
| 130 | interrupted (Ctrl-C, SIGTERM) |
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "DataError",
    "LaleError",
    "MissingDependencyError",
    "RunError",
    "UnavailableError",
    "UsageError",
    "WorkFailedError",
    "cause_text",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


_OBJECT_REPR = re.compile(r" ?<[\w.]+ object at 0x[0-9a-fA-F]+>")
"""An object's default repr (``<_io.BytesIO object at 0x7f…>``): an address, no information."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, newlines included, folded into one space.

    Default object reprs (``<_io.BytesIO object at 0x…>``) are dropped: they say nothing.
    """
    return " ".join(_OBJECT_REPR.sub("", str(text)).split())


_NO_DETAIL = "see previous exception for details"


def cause_text(err: BaseException) -> str:
    """``"Type: message"`` of ``err`` followed by the messages of its causes, on one line.

    Walks ``__cause__`` / ``__context__`` (where rasterio keeps GDAL's own message behind a
    "Read failed. See previous exception for details."), drops repeats and folds newlines.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = one_line(current)
        vague = current is not err and text.lower().rstrip(".").endswith(_NO_DETAIL)
        if text and not vague and all(text not in p for p in parts):
            parts.append(text)
        current = current.__cause__ or current.__context__
    head = f"{type(err).__name__}: {parts[0]}" if parts else type(err).__name__
    return "; ".join([head, *parts[1:]])


class LaleError(Exception):
    """Base of every error lale raises on purpose; ``str(error)`` is one line.

    Subclasses set :attr:`exit_code`; the ``lale`` command prints the message and exits with it.
    """

    exit_code: ClassVar[int] = EXIT_USAGE


class UsageError(LaleError, ValueError):
    """An option or argument that cannot be used (exit 2)."""

    exit_code: ClassVar[int] = EXIT_USAGE


class WorkFailedError(LaleError, RuntimeError):
    """The work itself failed: training diverged, a model failed, a check did not pass (exit 1)."""

    exit_code: ClassVar[int] = EXIT_FAILURE


class UnavailableError(LaleError, RuntimeError):
    """Something this machine lacks: a device, an optional package, a file not cached (exit 3)."""

    exit_code: ClassVar[int] = EXIT_UNAVAILABLE


class DataError(LaleError, ValueError):
    """Bad input data: an unreadable file, mismatched sizes, wrong band count, a missing mask, …

    ``str(error)`` is one line, ``"<file or folder>: <what is wrong>"``, fit for a command-line
    error. The offending path is also kept in :attr:`path`.

    Args:
        path: The file, folder or URL at fault.
        problem: What is wrong with it; newlines are folded into spaces.
    """

    exit_code: ClassVar[int] = EXIT_USAGE

    def __init__(self, path: str | Path | object, problem: str) -> None:
        self.path = Path(str(path))
        self.problem = one_line(problem)
        # str(path), not self.path: a URL keeps its "https://" (Path folds it to "https:/")
        super().__init__(f"{path}: {self.problem}")


class RunError(LaleError, ValueError):
    """A run directory or one of its files is missing or invalid (exit 2).

    ``str(error)`` is one line, ``"<file>: <what is wrong>"``; the file is kept in :attr:`path`.
    """

    exit_code: ClassVar[int] = EXIT_USAGE

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = one_line(problem)
        super().__init__(f"{self.path}: {self.problem}")


#: Top-level modules of the optional dependencies → the install extra that provides them.
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "train",
    "lightning": "train",
    "torchmetrics": "train",
    "safetensors": "train",
    "litdata": "train",
    "pyarrow": "train",
    "torchvision": "baselines",
    "timm": "baselines",
    "segmentation_models_pytorch": "baselines",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "edge",
}


class MissingDependencyError(UnavailableError):
    """An optional dependency of a command is not installed (exit 3).

    ``str(error)`` is one line naming the command, the missing module and what to install.

    Args:
        command: The command that needs it, e.g. ``"lale train"``.
        module: The module that could not be imported.
        extra: The extra to install (default: the one providing ``module``).
        hint: Appended to the message, e.g. a way around the missing package.
    """

    def __init__(self, command: str, module: str, extra: str | None = None, hint: str = "") -> None:
        self.module = module
        self.extra = extra or EXTRA_OF_MODULE.get(module.split(".")[0], "train")
        torch_family = module.split(".")[0] in ("torch", "lightning", "torchmetrics")
        what = "PyTorch" if torch_family else module
        super().__init__(
            f"{command} needs {what} (module {module!r} is not installed): "
            f"pip install 'lale[{self.extra}]'" + (f"; {hint}" if hint else "")
        )

    @classmethod
    def of(
        cls, err: ImportError, command: str, extra: str | None = None, hint: str = ""
    ) -> MissingDependencyError | None:
        """The error for ``err`` if it is the import of an optional dependency, else ``None``."""
        name = err.name or ""
        if name.split(".")[0] not in EXTRA_OF_MODULE:
            return None
        return cls(command, name, extra, hint)
