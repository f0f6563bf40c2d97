"""Mean ± std over seeds, and the F1 gap between two models with its interval and p-value.

The gap is tested with Welch's t over seeds (unequal variances, Welch–Satterthwaite degrees of
freedom, ``scipy.stats.t``); with fewer than two seeds on a side there is no test, and the JSON
says so instead of printing a number that means nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["WELCH", "Gap", "mean_std", "welch_gap"]

WELCH = "welch_t_over_seeds"
NO_TEST = "none (fewer than 2 seeds per model)"


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values"}``; ``std`` is the sample std (``None`` for one value)."""
    vals = [float(v) for v in values]
    return {
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
        "values": vals,
    }


@dataclass(frozen=True)
class Gap:
    """``mean(a) − mean(b)`` with its 95 % interval and two-sided p-value.

    Attributes:
        value: The difference of the means.
        low: Lower end of the 95 % interval (``None`` without a test).
        high: Upper end.
        p_value: Two-sided p-value of "no difference" (``None`` without a test).
        test: Which test: :data:`WELCH` or why there is none.
        df: Welch–Satterthwaite degrees of freedom (``None`` without a test or variance).
    """

    value: float
    low: float | None
    high: float | None
    p_value: float | None
    test: str
    df: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, scale: float = 100.0, unit: str = " pts") -> str:
        """``+1.2 pts [−0.3, +2.7], p=0.09`` (F1 in points by default)."""
        text = f"{self.value * scale:+.1f}{unit}"
        if self.low is not None and self.high is not None:
            text += f" [{self.low * scale:+.1f}, {self.high * scale:+.1f}]"
        if self.p_value is not None:
            text += f", p={self.p_value:.2g}"
        else:
            text += " (no test: one seed)"
        return text


def welch_gap(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Gap:
    """Welch's t on ``a`` against ``b`` (per-seed scores of two models)."""
    if not a or not b:
        raise ValueError("both models need at least one score")
    gap = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Gap(gap, None, None, None, NO_TEST, None)
    from scipy.stats import t as student_t

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # identical scores on every seed: the gap is exact
        return Gap(gap, gap, gap, 1.0 if gap == 0 else 0.0, WELCH, None)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * student_t.sf(abs(gap / se), df))
    return Gap(gap, gap - half, gap + half, p, WELCH, df)
