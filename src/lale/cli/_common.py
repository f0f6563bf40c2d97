"""What every ``lale`` command shares: the consoles, the progress bar, the one error path.

A command raises :class:`~lale.errors.LaleError` (or calls :func:`fail`) for anything a user can
act on; :func:`add_command` wraps every command so that such an error prints ``error: <one
line>`` on stderr and exits with the error's code (see :mod:`lale.errors`), a missing optional
dependency (PyTorch, onnx, ...) says what to install and exits 3, and Ctrl-C exits 130.
Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from lale.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    LaleError,
    MissingDependencyError,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "add_command",
    "fail",
    "progress_bar",
    "say_on",
    "stderr",
    "stdout",
]

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def stdout() -> Console:
    """The console for results; wide tables stay readable when output is redirected."""
    return Console(width=None if sys.stdout.isatty() else 200)


@functools.cache
def stderr() -> Console:
    """The console for errors and progress bars."""
    return Console(stderr=True)


def say_on(console: Console) -> Callable[[str], None]:
    """A ``say`` for library code: each message printed as given (no markup) on one line."""

    def say(message: str) -> None:
        console.print(escape(message), soft_wrap=True)

    return say


def progress_bar(*, disable: bool = False) -> Progress:
    """A transient progress bar on stderr: description, bar, percent, done/total, time left."""
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=stderr(), transient=True, disable=disable)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` as one line on stderr and return the exit to raise.

    Use as ``raise fail("…") from None``: no traceback reaches the user.
    """
    stderr().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


#: Commands whose missing packages come with another extra than the package's own, and hints.
_EXTRA_OF_COMMAND = {"lale export": "onnx"}
_HINT_OF_COMMAND = {
    "lale predict": "or predict from an exported file alone: --model FILE.onnx (lale[edge])"
}


def guarded(command: F, name: str = "lale") -> F:
    """``command`` with the one error path: a :class:`LaleError` becomes its one line and code.

    An optional dependency that cannot be imported (PyTorch in a ``lale[edge]`` install, onnx,
    ...) becomes a :class:`~lale.errors.MissingDependencyError`: one line saying what to install.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LaleError as err:
            raise fail(str(err), err.exit_code) from None
        except ImportError as err:
            extra, hint = _EXTRA_OF_COMMAND.get(name), _HINT_OF_COMMAND.get(name, "")
            missing = MissingDependencyError.of(err, name, extra, hint)
            if missing is None:
                raise
            raise fail(str(missing), missing.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None

    return run  # type: ignore[return-value]


def add_command(app: typer.Typer, name: str, command: Callable[..., Any], **options: Any) -> None:
    """Register ``command`` on ``app`` as ``lale NAME``, behind the one error path.

    ``options`` go to ``app.command`` (``epilog``, …).
    """
    app.command(name, **options)(guarded(command, f"lale {name}"))
