"""Outputs that appear together: every file is staged beside its target and renamed at the end.

A command that writes several files (tables, raster, pictures) stages each one with
:meth:`StagedOutputs.path` and calls :meth:`StagedOutputs.commit` when all are written; until
then no final name is touched, and on any error the staged files are removed, so a failed or
interrupted run leaves no half-written output under its final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from lale.atomic import staged_path

__all__ = ["StagedOutputs"]


class StagedOutputs:
    """A set of output files committed all at once (use as a context manager)."""

    def __init__(self) -> None:
        self.staged: dict[Path, Path] = {}

    def path(self, target: Path) -> Path:
        """A temporary file beside ``target`` to write; it replaces ``target`` on commit."""
        tmp = staged_path(target)
        self.staged[Path(target)] = tmp
        return tmp

    def write_bytes(self, target: Path, data: bytes) -> None:
        """Stage ``data`` for ``target``."""
        self.path(target).write_bytes(data)

    def write_json(self, target: Path, obj: Any) -> None:
        """Stage ``obj`` as indented UTF-8 JSON for ``target`` (NaN refused)."""
        text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        self.write_bytes(target, text.encode("utf-8"))

    def commit(self) -> list[Path]:
        """Sync every staged file, then rename them all into place; returns the targets."""
        for tmp in self.staged.values():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        for target, tmp in self.staged.items():
            os.replace(tmp, target)
        done = list(self.staged)
        self.staged.clear()
        return done

    def abort(self) -> None:
        """Remove every staged file."""
        for tmp in self.staged.values():
            tmp.unlink(missing_ok=True)
        self.staged.clear()

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # nothing is left after a commit; after an error, the staged files go
