"""Output folders checked before any work: one line naming the path when one cannot be made."""

from __future__ import annotations

import os
from pathlib import Path

from lale.errors import UsageError

__all__ = ["check_out_dir"]


def check_out_dir(path: str | Path, option: str = "--out") -> Path:
    """Raise :class:`UsageError` unless ``path`` is, or can be created as, a writable folder.

    Nothing is created: the nearest existing ancestor is checked instead, so a command can
    validate its inputs before it makes its output folder.

    Args:
        path: The output folder.
        option: How the command line names it, for the message.

    Raises:
        UsageError: A file is in the way, or the folder (or the one it would be made in) is
            not writable; the message names the path.
    """
    path = Path(path)
    target = path.absolute()
    probe = target
    while not probe.exists() and not probe.is_symlink():
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == target else f"cannot be created: {probe} is a file"
        raise UsageError(f"{option} {path}: {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == target else f"cannot be created in {probe}"
        raise UsageError(f"{option} {path}: {what} (permission denied)")
    return path
