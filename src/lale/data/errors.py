"""The one exception type for bad input data: its message is a single line naming the file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad input data: an unreadable file, mismatched sizes, wrong band count, a missing mask, …

    ``str(error)`` is one line, ``"<file or folder>: <what is wrong>"``, fit for a command-line
    error. The offending path is also kept in :attr:`path`.

    Args:
        path: The file or folder at fault.
        problem: What is wrong with it; newlines are folded into spaces.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")
