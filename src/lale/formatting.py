"""Small text formatters shared by tables, figures and reports."""

from __future__ import annotations

__all__ = ["percent"]


def percent(value: float | None, digits: int = 1, unit: str = "", missing: str = "n/a") -> str:
    """A fraction in percent: ``percent(0.1234, 2) == "12.34"``, ``percent(None) == "n/a"``.

    Args:
        value: The fraction (1.0 is 100 %), or ``None`` when there is none.
        digits: Decimals after the point.
        unit: Appended to the number, e.g. ``"%"`` or ``" %"``.
        missing: Shown for ``None``.
    """
    return missing if value is None else f"{100 * value:.{digits}f}{unit}"
