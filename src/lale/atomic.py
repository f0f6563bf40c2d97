"""Atomic file outputs: a file appears under its final name complete, or not at all.

Every output lale writes (weights, configs, checkpoints, tables, rasters, ONNX files) is staged
in a temporary file beside its target, flushed, fsync'ed and renamed over it, so a crash or a
full disk leaves either the previous version or nothing, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "staged_path", "write_bytes_atomic", "write_json_atomic"]

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_chunks(fh: IO[bytes], data: bytes) -> None:
    for start in range(0, len(data), _CHUNK):
        fh.write(data[start : start + _CHUNK])


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def staged_path(target: str | Path) -> Path:
    """Create an empty hidden file beside ``target`` (usual permissions) and return its path.

    The caller writes it and renames it over ``target`` (:func:`atomic_path` does both).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` if the block succeeds.

    Use for writers that want a file name (GDAL, onnx, matplotlib). On any exception the
    temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    tmp = staged_path(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` all at once: temporary file, fsync, ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        _write_chunks(fh, data)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``path``, atomically.

    Raises:
        ValueError: ``obj`` holds NaN/inf (not valid JSON; use ``None``).
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
