"""Gather a benchmark's results: test scores over seeds, profiles, claims and ablation verdicts.

One row per model: ``model``, ``params``, ``storage_bytes``, ``gmacs``, ``throughput`` (CPU
images/s), ``macro_f1`` and ``miou`` as ``{"mean", "std", "values"}`` over seeds, per-class F1
means. The ``claims`` compare the chosen LALE model with the best-F1 baseline and with
``upernet``: the F1 gap (:func:`~lale.benchmark.statistics.welch_gap`) and the efficiency
ratios, each beside the paper's published figure where one is known.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from typing import Any

from lale.benchmark.plan import BenchmarkPlan
from lale.benchmark.runner import RUN_RECORD, BenchmarkError
from lale.benchmark.statistics import Gap, mean_std, welch_gap
from lale.run_layout import TEST_METRICS

__all__ = [
    "ablation_verdicts",
    "claim_line",
    "claims",
    "collect_rows",
    "profile_entries",
    "published_points",
]


def published_points() -> dict[str, dict[str, Any]]:
    """The paper's published figures by registry name (``lale paper``'s table).

    Keys as in a result row: ``macro_f1`` and ``miou`` (0..1), ``params``, ``gmacs``; the paper
    publishes no storage or throughput, so those ratios have no published figure.
    """
    from lale.profiling.paper import load_paper_table

    return {
        row.model: {
            "macro_f1": row.f1 / 100,
            "miou": row.iou / 100,
            "params": row.params_m * 1e6,
            "gmacs": row.gmacs,
        }
        for row in load_paper_table().rows
    }


def _mean_of(values: list[float | None]) -> float | None:
    """Mean of the seeds where the class is scored (``None``: absent from the test split)."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _family(model: str) -> str:
    from lale.models.registry import get_entry

    return get_entry(model).family


def collect_rows(plan: BenchmarkPlan) -> list[dict[str, Any]]:
    """One row per model with its test scores over the plan's seeds (profiles not yet in)."""
    rows = []
    for entry in plan.entries:
        scores, records = [], []
        for spec in (r for r in plan.runs() if r.entry == entry):
            path = spec.run_dir / TEST_METRICS
            if not path.is_file():
                raise BenchmarkError(
                    f"{spec.run_dir} has no {TEST_METRICS}: the run did not finish"
                )
            scores.append(json.loads(path.read_text()))
            record = spec.run_dir / RUN_RECORD
            records.append(json.loads(record.read_text()) if record.is_file() else {})
        names = list(scores[0]["per_class"])
        rows.append(
            {
                "model": entry.label,
                "arch": entry.model,
                "options": entry.kwargs,
                "family": _family(entry.model),
                "seeds": list(plan.seeds),
                "macro_f1": mean_std([s["macro"]["f1"] for s in scores]),
                "miou": mean_std([s["macro"]["iou"] for s in scores]),
                "per_class_f1": {
                    n: _mean_of([s["per_class"][n]["f1"] for s in scores]) for n in names
                },
                "train": {
                    k: [r.get(k) for r in records]
                    for k in ("steps", "epochs", "pixels_seen", "train_images_per_s")
                },
            }
        )
    return rows


def profile_entries(plan: BenchmarkPlan, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Count and time every model (interleaved rounds, CPU; bf16 on CUDA too) into ``rows``.

    Returns:
        The timing settings and environment, for ``results.json``.
    """
    import torch

    from lale.profiling import TimingConfig, collect_environment, resolve_device
    from lale.profiling.counting import count_macs, count_parameters, storage_bytes
    from lale.profiling.timing import time_models
    from lale.runs import load_run

    built = {}
    for entry, row in zip(plan.entries, rows, strict=True):
        spec = next(r for r in plan.runs() if r.entry == entry)
        model, config = load_run(spec.run_dir)
        row["params"] = count_parameters(model)
        row["storage_bytes"] = storage_bytes(model)
        row["gmacs"] = count_macs(model, plan.profile_size, config.in_channels) / 1e9
        built[entry.label] = (model, config.in_channels)
    bands = {c for _, c in built.values()}
    cpu = TimingConfig(
        size=plan.profile_size,
        in_channels=bands.pop() if len(bands) == 1 else 3,
        batch_size=plan.profile_batch,
        warmup=2,
        repeats=5,
        latency=False,
    )
    timings = time_models({k: m for k, (m, _) in built.items()}, cpu)
    settings: dict[str, Any] = {"cpu": asdict(cpu)}
    gpu_timings = {}
    if torch.cuda.is_available():
        gpu = TimingConfig(
            size=plan.profile_size,
            in_channels=cpu.in_channels,
            batch_size=64,
            device="cuda",
            dtype="bf16",
            channels_last=True,
            latency=False,
        )
        gpu_timings = time_models({k: m for k, (m, _) in built.items()}, gpu)
        settings["gpu"] = asdict(gpu)
    for row in rows:
        row["throughput"] = timings[row["model"]].throughput
        gpu_result = gpu_timings.get(row["model"])
        row["throughput_gpu_bf16"] = None if gpu_result is None else gpu_result.throughput
    settings["environment"] = asdict(collect_environment(resolve_device("cpu")))
    return settings


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def _compare(own: dict[str, Any], ref: dict[str, Any], why: str) -> dict[str, Any]:
    paper = published_points()
    mine, theirs = paper.get(own["arch"], {}), paper.get(ref["arch"], {})
    gap = welch_gap(own["macro_f1"]["values"], ref["macro_f1"]["values"])
    published_gap = None
    if mine.get("macro_f1") is not None and theirs.get("macro_f1") is not None:
        published_gap = mine["macro_f1"] - theirs["macro_f1"]

    def both(key: str, smaller_is_better: bool = True, paper_key: str | None = None) -> Any:
        a, b = (ref, own) if smaller_is_better else (own, ref)
        pa, pb = (theirs, mine) if smaller_is_better else (mine, theirs)
        pk = paper_key or key
        return {
            "measured": _ratio(a.get(key), b.get(key)),
            "published": _ratio(pa.get(pk), pb.get(pk)),
        }

    return {
        "model": own["model"],
        "reference": ref["model"],
        "why": why,
        "f1_gap": {**gap.to_dict(), "published": published_gap},
        "params_div": both("params"),
        "storage_div": both("storage_bytes", paper_key="storage_bytes"),
        "gmacs_div": both("gmacs"),
        "throughput_x": both("throughput", smaller_is_better=False),
    }


def claims(rows: list[dict[str, Any]], lale: str | None) -> list[dict[str, Any]]:
    """The chosen LALE model against the best-F1 baseline and against ``upernet``."""
    by_name = {r["model"]: r for r in rows}
    own_name = lale or next((r["model"] for r in rows if r["family"] == "lale"), None)
    if own_name is None:
        return []
    own = by_name[own_name]
    baselines = [r for r in rows if r["family"] != "lale"]
    out = []
    if baselines:
        best = max(baselines, key=lambda r: r["macro_f1"]["mean"])
        out.append(_compare(own, best, "best-F1 baseline"))
    upernet = by_name.get("upernet")
    if upernet is not None and (not baselines or upernet is not best):
        out.append(_compare(own, upernet, "upernet"))
    return out


def claim_line(claim: dict[str, Any]) -> str:
    """One line per claim, e.g. ``lale_t vs unet (best-F1 baseline): F1 -1.2 pts [...] ...``."""
    g = claim["f1_gap"]
    gap = Gap(g["value"], g["low"], g["high"], g["p_value"], g["test"], g["df"])
    parts = [f"F1 {gap.describe()}"]
    for key, word in (
        ("params_div", "params ÷"),
        ("storage_div", "storage ÷"),
        ("gmacs_div", "GMACs ÷"),
    ):
        parts.append(f"{word} {_fmt(claim[key])}")
    parts.append(f"throughput × {_fmt(claim['throughput_x'])}")
    return f"{claim['model']} vs {claim['reference']} ({claim['why']}): " + ", ".join(parts)


def _fmt(pair: dict[str, Any]) -> str:
    measured = "n/a" if pair["measured"] is None else f"{pair['measured']:.2f}"
    if pair.get("published") is not None:
        measured += f" (paper {pair['published']:.2f})"
    return measured


def ablation_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One verdict line per variant against the first (the paper's) variant."""
    ref = rows[0]
    lines = []
    for row in rows[1:]:
        gap = welch_gap(row["macro_f1"]["values"], ref["macro_f1"]["values"])
        dmacs = _ratio(row["gmacs"] - ref["gmacs"], ref["gmacs"])
        dthr = _ratio(row["throughput"] - ref["throughput"], ref["throughput"])
        if gap.low is None or gap.high is None:
            verdict = "no verdict (one seed)"
        elif gap.low > 0:
            verdict = "F1 higher (95 % interval above 0)"
        elif gap.high < 0:
            verdict = "F1 lower (95 % interval below 0)"
        else:
            verdict = "no F1 difference shown at this budget"
        lines.append(
            f"{row['model']} vs {ref['model']}: ΔF1 {gap.describe()}, "
            f"ΔGMACs {_pct(dmacs)}, Δthroughput {_pct(dthr)} → {verdict}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0%}"
