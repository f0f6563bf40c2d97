"""The progress callback type every long-running lale function accepts."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressFn"]

ProgressFn = Callable[[int, int], None]
"""Called with ``(done, total)`` as work advances (images, patches, windows, ...)."""
