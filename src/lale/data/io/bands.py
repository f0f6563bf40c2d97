"""Band lists as users type them: ``"4,3,2"``, 1-based band numbers in model order."""

from __future__ import annotations

from typing import overload

from lale.errors import UsageError

__all__ = ["parse_bands"]


@overload
def parse_bands(text: str) -> tuple[int, ...]: ...
@overload
def parse_bands(text: None) -> None: ...
def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` → ``(4, 3, 2)``; ``None`` stays ``None``.

    Raises:
        UsageError: Not a non-empty, comma-separated list of integers >= 1.
    """
    if text is None:
        return None
    problem = f"--bands expects 1-based band numbers like 4,3,2, got {text!r}"
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise UsageError(problem) from None
    if not bands or min(bands) < 1:
        raise UsageError(problem)
    return bands
