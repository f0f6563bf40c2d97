"""Output paths checked before any work: a folder or file lale can create, or one clear line.

Commands that write (``predict --out``, ``export --out``, ``prepare OUT``, ``synth OUT``) call
one of these first, so an output that cannot be made (a file in the way, a read-only folder)
fails at once with a line naming the output, not after the work or once per input.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lale.errors import UsageError, one_line

__all__ = ["OutputError", "check_output_dir", "check_output_file"]


class OutputError(UsageError):
    """An output path that cannot be created or written (exit 2); the message names it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = one_line(problem)
        super().__init__(f"{self.path}: cannot write output here: {self.problem}")


def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path`` and its parents that exists; a file in the way raises."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "it is a file" if candidate == path else f"{candidate} is a file"
                raise OutputError(path, f"{what}, not a folder")
            return candidate
    return Path.cwd()  # pragma: no cover - the root always exists


def _probe(folder: Path, path: Path) -> None:
    """Create and remove a temporary file in ``folder`` (``os.access`` is wrong for root)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".lale-probe-")
    except OSError as err:
        raise OutputError(path, err.strerror or str(err)) from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(path: str | Path, *, create: bool = True) -> Path:
    """Check that ``path`` is, or can become, a writable folder; create it if ``create``.

    Raises:
        OutputError: A file is in the way, a parent cannot be created, or the folder (or its
            nearest existing parent, when not created) is not writable.
    """
    path = Path(path)
    base = _existing_ancestor(path)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(path, err.strerror or str(err)) from None
        base = path
    _probe(base, path)
    return path


def check_output_file(path: str | Path) -> Path:
    """Check that the file ``path`` can be written (its folder is created if needed).

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "it is a folder; give the file to write")
    try:
        check_output_dir(path.parent)
    except OutputError as err:
        problem = err.problem
        if problem.startswith("it is "):  # the folder, not the file, is what is in the way
            problem = f"{path.parent} is {problem.removeprefix('it is ')}"
        raise OutputError(path, problem) from None
    return path
