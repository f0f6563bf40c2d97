"""What every ``lale`` command shares: exit codes, the one-line error, the output console."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

#: Exit code for a run that failed (bad input file, training error, model failure).
EXIT_FAILURE = 1
#: Exit code for invalid usage (unknown model, bad option value, unavailable device).
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` as one line on stderr and return the exit to raise.

    Use as ``raise fail("…") from None``: no traceback reaches the user.
    """
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def stdout() -> Console:
    """Console for results; wide tables stay readable when output is redirected."""
    return Console(width=None if sys.stdout.isatty() else 200)
