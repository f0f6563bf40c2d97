"""Claiming a run directory for training: one trainer at a time, no blocking leftovers.

:class:`RunLock` holds an exclusive ``flock`` on the run directory's lock file while a process
trains into it; a second process gets a one-line error naming the holder. :func:`claim_new`
accepts a fresh ``--out``, or one left by a run that never trained (no weights, no checkpoint),
which it clears; a run that trained must be resumed instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path
from types import TracebackType

from lale.errors import WorkFailedError
from lale.run_layout import CHECKPOINT, CONFIG, LOCK, UNKNOWN_COLOURS, WEIGHTS, run_files

__all__ = ["RunBusyError", "RunLock", "claim_new"]


class RunBusyError(WorkFailedError):
    """Another process is training into the run directory."""


class RunLock:
    """Exclusive lock of ``run_dir`` (created if needed) while training; use as a context.

    The lock file records ``pid@host`` of the holder; the lock itself is the open file's
    ``flock``, released by the kernel when the process ends however it ends.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusyError(
                f"{self.path.parent} is being trained by {holder}; wait for it or choose "
                "another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def claim_new(out: Path, clear: bool = True) -> None:
    """Make ``out`` ready for a new run (call while holding its :class:`RunLock`).

    A run directory with a config but neither weights nor a checkpoint never trained: its files
    are removed so the retry can start (with ``clear=False`` only the check is made, e.g. before
    the lock is taken).

    Raises:
        WorkFailedError: ``out`` holds a run that trained; resume it or choose another folder.
    """
    if not (out / CONFIG).exists():
        return
    if (out / WEIGHTS).exists() or (out / CHECKPOINT).exists():
        raise WorkFailedError(
            f"{out} already holds a run; resume it with --resume {out} or choose another --out"
        )
    if not clear:
        return
    for name in (*run_files(), UNKNOWN_COLOURS):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINT.parent, ignore_errors=True)
