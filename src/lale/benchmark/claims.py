"""A benchmark's verdicts: the LALE model against each rival, ablations, the Pareto front.

Every claim compares the chosen LALE model with one rival under one protocol and says:

* whether both learned at this budget (macro-F1 at least twice that of predicting the majority
  class everywhere); a rival that did not is named and not compared with;
* the F1 gap with its interval over seeds (paired t by default, :mod:`.statistics`) and its
  bootstrap interval over test images, and how many seeds a gap of the power-line size needs;
* whether the ranking holds at every point of the budget curve, or where it flips;
* the efficiency ratios beside the paper's figures where known.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from lale.benchmark.figures import pareto_front
from lale.benchmark.statistics import (
    Gap,
    SeedTest,
    bootstrap_gap,
    paired_gap,
    seed_gap,
    seeds_needed,
    welch_gap,
)

__all__ = [
    "LEARN_FACTOR",
    "ablation_verdicts",
    "bn_effect",
    "claim_line",
    "claims",
    "learned",
    "pareto",
    "protocol_changes",
]

LEARN_FACTOR = 2.0
"""A model learned at a budget when its macro-F1 is at least this × the majority-class F1."""
Row = dict[str, Any]


def learned(row: Row, majority: float) -> bool:
    """Whether ``row``'s mean test macro-F1 reaches :data:`LEARN_FACTOR` × ``majority``."""
    return float(row["macro_f1"]["mean"]) >= LEARN_FACTOR * majority


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def _curve_ranking(own: Row, ref: Row) -> dict[str, Any]:
    """The mean test-F1 gap at each budget point; whether its sign ever differs from the end's."""
    a, b = own.get("curve"), ref.get("curve")
    if not a or not b:
        return {"ranking": "n/a", "points": [], "text": "no budget curve"}
    points = []
    for pa, pb in zip(a["points"], b["points"], strict=False):
        points.append(
            {
                "fraction": pa["fraction"],
                "step": pa["step"],
                "gap": pa["test_f1"]["mean"] - pb["test_f1"]["mean"],
            }
        )
    signs = [p["gap"] > 0 for p in points]
    final = signs[-1]
    if all(s == final for s in signs):
        where = "ahead" if final else "behind"
        text = f"ranking holds at all {len(points)} budget points ({own['model']} {where})"
        return {"ranking": "holds", "points": points, "flip_at": None, "text": text}
    since = len(signs) - 1
    while since > 0 and signs[since - 1] == final:
        since -= 1
    at = points[since]
    leader = own["model"] if final else ref["model"]
    text = (
        f"ranking flips: {leader} leads from {at['fraction']:.0%} of the budget "
        f"(step {at['step']:.0f}) on, not before"
    )
    return {"ranking": "flips", "points": points, "flip_at": at["step"], "text": text}


def _bootstrap(own: Row, ref: Row, resamples: int, per_image: dict[str, Any]) -> dict[str, Any]:
    a, b = per_image.get(own["model"]), per_image.get(ref["model"])
    if a is None or b is None:
        return {"available": False, "why": "no per-image test matrices (a DDP or older run)"}
    if a[0] != b[0]:
        return {"available": False, "why": "the two models were tested on other images"}
    gap = bootstrap_gap(a[1], b[1], resamples=resamples)
    return {"available": True, "resamples": resamples, "images": len(a[0]), **gap.to_dict()}


def _power(own: Row, ref: Row, gap_size: float, test: SeedTest) -> dict[str, Any]:
    va, vb = own["macro_f1"]["values"], ref["macro_f1"]["values"]
    spread = None
    if len(va) == len(vb) and len(va) > 1 and test == "paired":
        spread = statistics.stdev([x - y for x, y in zip(va, vb, strict=True)])
    elif len(va) > 1 and len(vb) > 1:  # Welch: the spread of a difference of two seeds
        spread = (statistics.variance(va) + statistics.variance(vb)) ** 0.5
    observed = statistics.fmean(va) - statistics.fmean(vb)
    return {
        "spread": spread,
        "gap": gap_size,
        "seeds": seeds_needed(gap_size, spread),
        "observed_gap_seeds": seeds_needed(observed, spread),
    }


def _verdict(gap: Gap, boot: dict[str, Any]) -> str:
    """``ahead`` / ``behind`` only when every interval there is lies above / below zero."""
    low, high = gap.low, gap.high
    if boot.get("available"):
        if low is None or high is None:  # one seed: the test images only
            low, high = boot["low"], boot["high"]
        else:
            low, high = min(low, boot["low"]), max(high, boot["high"])
    if low is None or high is None:
        return "untested"
    return "ahead" if low > 0 else "behind" if high < 0 else "no difference shown"


def _compare(
    own: Row,
    ref: Row,
    majority: float,
    protocol: str,
    test: SeedTest,
    resamples: int,
    gap_size: float,
    per_image: dict[str, Any],
    published: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    mine, theirs = published.get(own["arch"], {}), published.get(ref["arch"], {})
    a, b = own["macro_f1"]["values"], ref["macro_f1"]["values"]
    gap = seed_gap(a, b, test)
    published_gap = None
    if mine.get("macro_f1") is not None and theirs.get("macro_f1") is not None:
        published_gap = mine["macro_f1"] - theirs["macro_f1"]

    def both(key: str, smaller_is_better: bool = True) -> dict[str, Any]:
        x, y = (ref, own) if smaller_is_better else (own, ref)
        px, py = (theirs, mine) if smaller_is_better else (mine, theirs)
        measured, paper = _ratio(x.get(key), y.get(key)), _ratio(px.get(key), py.get(key))
        return {"measured": measured, "published": paper}

    claim: dict[str, Any] = {
        "model": own["model"],
        "reference": ref["model"],
        "protocol": protocol,
        "learned": {
            "model": learned(own, majority),
            "reference": learned(ref, majority),
            "majority_f1": majority,
            "threshold": LEARN_FACTOR * majority,
        },
        "f1_gap": {**gap.to_dict(), "published": published_gap},
        "paired": paired_gap(a, b).to_dict() if len(a) == len(b) else None,
        "welch": welch_gap(a, b).to_dict(),
        "bootstrap": _bootstrap(own, ref, resamples, per_image),
        "power": _power(own, ref, gap_size, test),
        "curve": _curve_ranking(own, ref),
        "params_div": both("params"),
        "storage_div": both("storage_bytes"),
        "gmacs_div": both("gmacs"),
        "throughput_x": both("throughput", smaller_is_better=False),
    }
    compared = claim["learned"]["model"] and claim["learned"]["reference"]
    claim["compared"] = compared
    claim["verdict"] = _verdict(gap, claim["bootstrap"]) if compared else "not compared"
    return claim


def claims(
    rows: Sequence[Row],
    lale: str | None,
    *,
    majority: float,
    protocol: str,
    test: SeedTest = "paired",
    resamples: int = 1000,
    gap_size: float = 0.02,
    per_image: dict[str, Any] | None = None,
    published: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The chosen LALE model (``lale``, else the first LALE row) against every other family's row.

    Args:
        rows: The protocol's rows (profiled).
        lale: Label of the LALE model.
        majority: Test macro-F1 of predicting the majority class everywhere.
        protocol: The protocol's description, for the lines.
        test: The test over seeds.
        resamples: Bootstrap resamples over test images.
        gap_size: The gap the power line reports seeds for (fraction of F1).
        per_image: Label → ``(image names, per-seed N×K×K matrices)``.
        published: The paper's figures by registry name.
    """
    by_name = {r["model"]: r for r in rows}
    own_name = lale or next((r["model"] for r in rows if r["family"] == "lale"), None)
    if own_name is None:
        return []
    own = by_name[own_name]
    options = (majority, protocol, test, resamples, gap_size, per_image or {}, published or {})
    return [_compare(own, ref, *options) for ref in rows if ref["family"] != "lale"]


def claim_line(claim: dict[str, Any]) -> str:
    """One line per claim: the verdict, the gap and its intervals, the curve, power, ratios."""
    head = f"{claim['model']} vs {claim['reference']} [{claim['protocol']}]"
    learn = claim.get("learned", {})
    if not claim.get("compared", True):
        pairs = ((claim["model"], "model"), (claim["reference"], "reference"))
        who = [name for name, key in pairs if not learn.get(key)]
        return (
            f"{head}: not compared: {' and '.join(who)} did not learn at this budget "
            f"(test macro-F1 below {learn['threshold']:.1%}, {LEARN_FACTOR:g}× the "
            f"majority-class {learn['majority_f1']:.1%})"
        )
    gap = Gap.from_dict(claim["f1_gap"])
    test = "paired" if gap.test.startswith("paired") else "Welch"
    boot = claim.get("bootstrap") or {}
    if gap.low is None:  # one seed: no test over seeds; a verdict rests on the test images
        basis = " (on the test-image bootstrap alone)" if boot.get("available") else ""
        parts = [f"{claim['verdict']}{basis}: F1 {gap.describe()}"]
    else:
        parts = [f"{claim['verdict']}: F1 {gap.describe()} ({test} over seeds)"]
    if boot.get("available"):
        parts.append(f"test-image bootstrap [{boot['low'] * 100:+.1f}, {boot['high'] * 100:+.1f}]")
    parts.append(claim["curve"]["text"])
    power = claim.get("power") or {}
    if power.get("spread") is not None:
        seeds = power["seeds"]
        need = f"~{seeds} seeds" if seeds else "more than 1000 seeds"
        parts.append(f"a {power['gap'] * 100:g}-pt gap at this spread needs {need}")
    for key, word in (("params_div", "params ÷"), ("gmacs_div", "GMACs ÷")):
        parts.append(f"{word} {_fmt(claim[key])}")
    parts.append(f"throughput × {_fmt(claim['throughput_x'])}")
    return f"{head}: " + "; ".join(parts)


def _fmt(pair: dict[str, Any]) -> str:
    measured = "n/a" if pair["measured"] is None else f"{pair['measured']:.2f}"
    if pair.get("published") is not None:
        measured += f" (paper {pair['published']:.2f})"
    return measured


def protocol_changes(by_protocol: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per rival whose verdict is not the same under every protocol."""
    verdicts: dict[str, dict[str, str]] = {}
    for protocol, claimed in by_protocol.items():
        for c in claimed:
            verdicts.setdefault(f"{c['model']} vs {c['reference']}", {})[protocol] = c["verdict"]
    lines = []
    for pair, seen in verdicts.items():
        if len(set(seen.values())) > 1:
            lines.append(f"{pair}: " + "; ".join(f"{v} under {p}" for p, v in seen.items()))
    return lines


def bn_effect(rows: Sequence[Row]) -> dict[str, Any]:
    """Per BatchNorm model: test-F1 gain of re-estimated over running statistics, same weights.

    From the budget curves, which score every point both ways: mean ± std over seeds at each
    point (the pure evaluation effect, paired by seed and weights).
    """
    out: dict[str, Any] = {}
    for row in rows:
        curve = row.get("curve") or {}
        points = [p for p in curve.get("points", []) if "bn_gain" in p]
        if points:
            out[row["model"]] = [
                {"fraction": p["fraction"], "step": p["step"], "gain": p["bn_gain"]} for p in points
            ]
    return out


def pareto(rows: Sequence[Row], majority: float) -> dict[str, Any]:
    """For each LALE row: on which cost axes it is on the accuracy front, and who dominates it.

    Only models that learned at this budget take part. Axes: GMACs and parameters (fewer is
    better) and CPU throughput (more is better); accuracy is the mean test macro-F1.
    """
    pool = [r for r in rows if learned(r, majority)]
    axes = (("gmacs", False), ("throughput", True), ("params", False))
    out: dict[str, Any] = {"models": [r["model"] for r in pool], "lale": {}}
    for own in (r for r in pool if r["family"] == "lale"):
        verdict = {}
        for key, higher in axes:
            pts = [(float(r[key]), float(r["macro_f1"]["mean"])) for r in pool]
            front = {pool[i]["model"] for i in pareto_front(pts, higher)}
            x, y = float(own[key]), float(own["macro_f1"]["mean"])
            sign = 1 if higher else -1
            dominated_by = [
                r["model"]
                for r in pool
                if r is not own
                and sign * float(r[key]) >= sign * x
                and float(r["macro_f1"]["mean"]) >= y
            ]
            gaps = {
                m: 100 * (float(r["macro_f1"]["mean"]) - y)
                for r in pool
                if (m := r["model"]) in dominated_by
            }
            verdict[key] = {
                "on_front": own["model"] in front,
                "dominated_by": dominated_by,
                "f1_lead_pts": gaps,
            }
        out["lale"][own["model"]] = verdict
    return out


def ablation_verdicts(rows: Sequence[Row], test: SeedTest = "paired") -> list[str]:
    """One verdict line per variant against the first (the paper's) variant."""
    ref = rows[0]
    lines = []
    for row in rows[1:]:
        gap = seed_gap(row["macro_f1"]["values"], ref["macro_f1"]["values"], test)
        dmacs = _ratio(row["gmacs"] - ref["gmacs"], ref["gmacs"])
        dthr = _ratio(row["throughput"] - ref["throughput"], ref["throughput"])
        verdict = {
            "untested": "no verdict (one seed)",
            "higher": "F1 higher (95 % interval above 0)",
            "lower": "F1 lower (95 % interval below 0)",
            "none": "no F1 difference shown at this budget",
        }[gap.verdict]
        lines.append(
            f"{row['model']} vs {ref['model']}: ΔF1 {gap.describe()}, "
            f"ΔGMACs {_pct(dmacs)}, Δthroughput {_pct(dthr)} → {verdict}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0%}"
