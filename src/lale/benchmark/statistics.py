"""The statistics of a benchmark's comparisons: gaps over seeds, over test images, and power.

* **Over seeds** (training noise). Seed *k* gives every model the same data order, crops and
  augmentation, so the runs pair up by seed and the default test is the paired t-test on the
  per-seed differences (:func:`paired_gap`); Welch's t over seeds (:func:`welch_gap`), which
  ignores the pairing, stays as an option. Both use ``scipy.stats.t``.
* **Over test images** (test-set noise). :func:`bootstrap_gap` resamples the test images with
  replacement, the same resample for both models and all seeds, and recomputes macro-F1 from
  the summed per-image confusion matrices: the interval says how much the gap depends on which
  images happen to be in the test split, with the trained weights held fixed.
* **Power.** :func:`seeds_needed` says how many seeds a paired test needs to find a gap of a
  given size at the observed spread of the differences (two-sided 5 %, power 80 %, from the
  noncentral t distribution).

With fewer than two seeds on a side there is no test over seeds, and the JSON says so instead
of printing a number that means nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PAIRED",
    "TESTS",
    "WELCH",
    "Gap",
    "SeedTest",
    "bootstrap_gap",
    "macro_f1",
    "majority_f1",
    "mean_std",
    "paired_gap",
    "seed_gap",
    "seeds_needed",
    "welch_gap",
]

WELCH = "welch_t_over_seeds"
PAIRED = "paired_t_over_seeds"
SeedTest = Literal["paired", "welch"]
TESTS: dict[str, str] = {"paired": PAIRED, "welch": WELCH}
NO_TEST = "none (fewer than 2 seeds per model)"
BOOTSTRAP = "bootstrap_over_test_images"


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
        p_value: Two-sided p-value of "no difference" (``None`` without a test or for a
            bootstrap interval).
        test: Which test: :data:`PAIRED`, :data:`WELCH`, the bootstrap, or why there is none.
        df: Degrees of freedom of the t distribution (``None`` without a test or variance).
    """

    value: float
    low: float | None
    high: float | None
    p_value: float | None
    test: str
    df: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gap:
        get = data.get
        return cls(data["value"], get("low"), get("high"), get("p_value"), data["test"], get("df"))

    def describe(self, scale: float = 100.0, unit: str = " pts") -> str:
        """``+1.2 pts [−0.3, +2.7], p=0.09`` (F1 in points by default)."""
        text = f"{self.value * scale:+.1f}{unit}"
        if self.low is not None and self.high is not None:
            text += f" [{self.low * scale:+.1f}, {self.high * scale:+.1f}]"
        if self.p_value is not None:
            text += f", p={self.p_value:.2g}"
        elif self.low is None:
            text += " (no test: one seed)"
        return text

    @property
    def verdict(self) -> Literal["higher", "lower", "none", "untested"]:
        """Where the interval lies: above 0, below 0, around it, or there is none."""
        if self.low is None or self.high is None:
            return "untested"
        return "higher" if self.low > 0 else "lower" if self.high < 0 else "none"


def _t_interval(gap: float, se: float, df: float, test: str, confidence: float) -> Gap:
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * student_t.sf(abs(gap / se), df))
    return Gap(gap, gap - half, gap + half, p, test, df)


def welch_gap(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Gap:
    """Welch's t on ``a`` against ``b`` (per-seed scores of two models)."""
    if not a or not b:
        raise ValueError("both models need at least one score")
    gap = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Gap(gap, None, None, None, NO_TEST, None)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # identical scores on every seed: the gap is exact
        return Gap(gap, gap, gap, 1.0 if gap == 0 else 0.0, WELCH, None)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return _t_interval(gap, se, df, WELCH, confidence)


def paired_gap(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Gap:
    """The paired t-test on the per-seed differences ``a[k] − b[k]`` (same seeds, in order)."""
    if len(a) != len(b):
        raise ValueError(f"a paired test needs the same seeds on both sides: {len(a)}, {len(b)}")
    if not a:
        raise ValueError("both models need at least one score")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    gap = statistics.fmean(diffs)
    if len(diffs) < 2:
        return Gap(gap, None, None, None, NO_TEST, None)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    if se == 0.0:
        return Gap(gap, gap, gap, 1.0 if gap == 0 else 0.0, PAIRED, None)
    return _t_interval(gap, se, len(diffs) - 1, PAIRED, confidence)


def seed_gap(a: Sequence[float], b: Sequence[float], test: SeedTest = "paired") -> Gap:
    """:func:`paired_gap` or :func:`welch_gap`."""
    return paired_gap(a, b) if test == "paired" else welch_gap(a, b)


def macro_f1(confusion: NDArray[Any]) -> NDArray[np.float64]:
    """Macro-F1 of each ``K×K`` matrix in ``…×K×K`` (classes present in truth or prediction).

    The same definition as :func:`lale.training.metrics.score_tensors`: the mean F1 over the
    classes with any truth or predicted pixel.
    """
    cm = confusion.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def bootstrap_gap(
    a: Sequence[NDArray[Any]],
    b: Sequence[NDArray[Any]],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Gap:
    """Percentile interval of the seed-mean macro-F1 gap over resampled test images.

    Args:
        a: Per-seed ``N×K×K`` per-image confusion matrices of the first model.
        b: The same for the second model, over the same ``N`` test images in the same order.
        resamples: Bootstrap resamples of the ``N`` images (with replacement).
        seed: Seed of the resampling.
        confidence: Coverage of the interval.

    Returns:
        The observed gap (seed means of macro-F1 over the whole split) with the interval;
        no p-value.
    """
    if not a or not b:
        raise ValueError("both models need per-image confusion matrices")
    n = a[0].shape[0]
    if any(m.shape[0] != n for m in (*a, *b)):
        raise ValueError("the per-image matrices must cover the same test images")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    counts = np.stack([np.bincount(d, minlength=n) for d in draws])  # resamples × N

    def resampled(mats: Sequence[NDArray[Any]]) -> NDArray[np.float64]:
        per_seed = [macro_f1(np.einsum("rn,nij->rij", counts, m.astype(np.float64))) for m in mats]
        return np.mean(per_seed, axis=0)

    observed = float(
        np.mean([macro_f1(m.sum(0)) for m in a]) - np.mean([macro_f1(m.sum(0)) for m in b])
    )
    gaps = resampled(a) - resampled(b)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(gaps, [tail, 100 - tail])
    return Gap(observed, float(low), float(high), None, BOOTSTRAP, None)


def seeds_needed(
    gap: float, spread: float | None, power: float = 0.8, alpha: float = 0.05, most: int = 1000
) -> int | None:
    """Seeds a two-sided paired t-test needs to find ``gap`` with ``power``.

    Args:
        gap: The difference to detect (same units as ``spread``).
        spread: Standard deviation of the per-seed differences (``None``: unknown).
        power: Wanted probability of a significant result when the gap is real.
        alpha: Two-sided significance level.
        most: Give up beyond this many (returns ``None``).

    Returns:
        The smallest number of seeds ≥ 2, or ``None`` when the spread is unknown or more than
        ``most`` would be needed. A spread of 0 needs 2.
    """
    if spread is None or gap == 0:
        return None
    if spread == 0:
        return 2
    from scipy.stats import nct
    from scipy.stats import t as student_t

    effect = abs(gap) / spread
    for n in range(2, most + 1):
        df = n - 1
        crit = float(student_t.ppf(1 - alpha / 2, df))
        nc = effect * math.sqrt(n)
        achieved = 1 - float(nct.cdf(crit, df, nc)) + float(nct.cdf(-crit, df, nc))
        if achieved >= power:
            return n
    return None


def majority_f1(support: Sequence[int]) -> float:
    """Macro-F1 of predicting the most frequent class everywhere, for truth counts ``support``.

    The majority class scores ``2p / (1 + p)`` (``p`` its share of the pixels), every other
    class present in the truth 0; the mean is over the classes present, as lale's macro-F1.
    """
    total = sum(support)
    if total <= 0:
        raise ValueError("no labelled pixels")
    share = max(support) / total
    present = sum(1 for s in support if s > 0)
    return 2 * share / (1 + share) / present
