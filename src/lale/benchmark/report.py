"""Write a benchmark's outputs into ``OUT``: results.json, results.csv, report.md, figures.

Every file is written atomically: it appears under its name complete, or not at all.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.benchmark.claims import LEARN_FACTOR, claim_line
from lale.benchmark.figures import plot_curves, plot_frontier, plot_per_class_f1
from lale.benchmark.plan import BenchmarkPlan
from lale.benchmark.results import published_points

__all__ = ["OUTPUTS", "write_outputs"]

_TESTS = {
    "paired_t_over_seeds": "paired t-test over seeds",
    "welch_t_over_seeds": "Welch t-test over seeds",
}

OUTPUTS = {
    "json": "results.json",
    "csv": "results.csv",
    "report": "report.md",
    "frontier": "frontier.png",
    "per_class": "per_class_f1.png",
    "curves": "curves.png",
}
_CSV_COLUMNS = (
    "protocol",
    "model",
    "family",
    "lr",
    "bn_stats",
    "params",
    "storage_bytes",
    "gmacs",
    "throughput",
    "throughput_gpu_bf16",
    "macro_f1_mean",
    "macro_f1_std",
    "miou_mean",
    "miou_std",
    "seeds",
)


def _csv(protocols: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for p in protocols:
        for r in p["models"]:
            writer.writerow(
                {
                    "protocol": p["key"],
                    **{k: r.get(k) for k in _CSV_COLUMNS[1:10]},
                    "macro_f1_mean": r["macro_f1"]["mean"],
                    "macro_f1_std": r["macro_f1"]["std"],
                    "miou_mean": r["miou"]["mean"],
                    "miou_std": r["miou"]["std"],
                    "seeds": len(r["macro_f1"]["values"]),
                }
            )
    return buffer.getvalue()


def _pm(stat: dict[str, Any]) -> str:
    if stat["std"] is None:
        return f"{stat['mean'] * 100:.1f}"
    return f"{stat['mean'] * 100:.1f} ± {stat['std'] * 100:.1f}"


def _table(protocol: dict[str, Any], threshold: float) -> list[str]:
    lines = [
        f"### {protocol['description']}",
        "",
        "| model | lr | params (M) | GMACs | CPU img/s | test macro-F1 (%) | test mIoU (%) | "
        "learned |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in protocol["models"]:
        learned = "yes" if r["macro_f1"]["mean"] >= threshold else "**no**"
        lines.append(
            f"| {r['model']} | {r['lr']:g} | {r['params'] / 1e6:.2f} | {r['gmacs']:.2f} | "
            f"{r['throughput']:.1f} | {_pm(r['macro_f1'])} | {_pm(r['miou'])} | {learned} |"
        )
    return [*lines, ""]


def _tuning(tuning: dict[str, Any]) -> list[str]:
    budget = tuning["budget"]
    lines = [
        "## Learning-rate tuning",
        "",
        f"Validation macro-F1 (best within {budget['amount']:g} {budget['kind']}, seed "
        f"{tuning['seed']}) per learning rate; the chosen one trains the tuned runs.",
        "",
        "| model | " + " | ".join(f"lr {lr}" for lr in _grid(tuning)) + " | chosen |",
        "| --- | " + " | ".join("---:" for _ in _grid(tuning)) + " | ---: |",
    ]
    for label, t in tuning["models"].items():
        cells = [
            f"{t['val_f1'][lr] * 100:.1f}" if lr in t["val_f1"] else "—" for lr in _grid(tuning)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {t['chosen']:g} |")
    return [*lines, ""]


def _grid(tuning: dict[str, Any]) -> list[str]:
    values = {lr for t in tuning["models"].values() for lr in t["val_f1"]}
    return sorted(values, key=float)


def _bn_effect(effect: dict[str, Any]) -> list[str]:
    lines = [
        "## What re-estimated BatchNorm statistics change",
        "",
        "Test macro-F1 with statistics re-estimated on fixed training crops minus with the "
        "running ones, the same weights (points of the budget curve), mean ± std over seeds, "
        "in points. Models without BatchNorm (LALE) are not affected and not listed.",
        "",
    ]
    for model, points in effect.items():
        cells = ", ".join(f"{p['fraction']:.0%}: {_pm(p['gain'])}" for p in points)
        lines.append(f"- {model}: {cells}")
    return [*lines, ""]


def _pareto(block: dict[str, Any]) -> list[str]:
    lines = ["## Pareto front (models that learned)", ""]
    names = {"gmacs": "GMACs", "throughput": "CPU throughput", "params": "parameters"}
    if not block["lale"]:
        return [*lines, "- no LALE model learned at this budget: no front to place it on", ""]
    for model, axes in block["lale"].items():
        for key, v in axes.items():
            if v["on_front"]:
                lines.append(f"- {model} is on the F1–{names[key]} front")
            else:
                leads = v.get("f1_lead_pts", {})
                who = ", ".join(
                    f"{m} (+{leads[m]:.1f} pts)" if m in leads else m for m in v["dominated_by"]
                )
                lines.append(f"- {model} is dominated on F1–{names[key]} by {who}")
    lines.append(
        "- (mean test macro-F1 against each cost; a lead within the seed spread means the "
        "two are tied on accuracy and the cheaper one wins that axis)"
    )
    return [*lines, ""]


def _costs(costs: dict[str, Any]) -> list[str]:
    lines = [
        "## What each option cost (seconds per run, mean over seeds)",
        "",
        "| model | run | budget-curve scoring | BatchNorm re-estimation | lr tuning (all grid "
        "runs) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    tuning = costs.get("tuning_seconds") or {}
    for model, c in costs["models"].items():
        cells = [_secs(c["run_seconds"]), _secs(c["curve_scoring_seconds"])]
        cells += [_secs(c["bn_recompute_seconds"]), _secs(tuning.get(model))]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _markdown(results: dict[str, Any]) -> str:
    plan = results["plan"]
    recipe = plan["recipe"]
    env = results["profile"]["environment"]
    majority = results["majority_f1"]
    threshold = LEARN_FACTOR * majority
    lines = [
        "# lale benchmark",
        "",
        f"- **data**: {plan['data']}",
        f"- **budget**: {plan['budget']['amount']:g} {plan['budget']['kind']} per run; "
        f"seeds {plan['seeds']}; budget curve at {plan['curve']} points",
        f"- **recipe**: AdamW lr {recipe['lr']}, batch {recipe['batch_size']}, "
        f"{recipe['crop_size']}² crops, {recipe['samples_per_epoch'] or 'one per image'} crops "
        f"per epoch, loss {recipe['loss']}, no early stopping",
        f"- **protocols**: {'; '.join(p['description'] for p in results['protocols'])} "
        f"(headline: {results['headline']})",
        f"- **learned?** a model learned when its test macro-F1 reaches {LEARN_FACTOR:g}× that "
        f"of predicting the majority class everywhere ({majority:.1%}), i.e. {threshold:.1%}; "
        "rivals below are named, not compared with",
        f"- **statistics**: F1 gaps with 95 % intervals from the {_TESTS[results['test']]} "
        f"and from a bootstrap over the test images ({plan['bootstrap']} resamples); the power "
        f"line says how many seeds a {plan['power_gap'] * 100:g}-point gap needs",
        f"- **profiled**: {results['profile']['cpu']['size']}² input, CPU batch "
        f"{results['profile']['cpu']['batch_size']}, {env['device']} "
        f"({env['torch_threads']} threads), torch {env['versions'].get('torch')}, "
        f"lale {env['versions'].get('lale')}",
        "",
        "## Results",
        "",
    ]
    for protocol in reversed(results["protocols"]):  # the headline first
        lines += _table(protocol, threshold)
    if results["claims"]:
        lines += [f"## Claims ({results['headline']})", ""]
        lines += [f"- {claim_line(c)}" for c in results["claims"]] + [""]
        others = [p for p in results["protocols"] if p["description"] != results["headline"]]
        for p in others:
            lines += [f"### Under {p['description']}", ""]
            lines += [f"- {claim_line(c)}" for c in p["claims"]] + [""]
        lines += ["## Verdicts that change with the protocol", ""]
        changes = results["protocol_changes"]
        lines += [f"- {c}" for c in changes] if changes else ["- none"]
        lines += [""]
        lines += _pareto(results["pareto"])
    if results.get("verdicts"):
        lines += [f"## Ablation: {plan['ablation']}", ""]
        for row in results.get("models", []):
            if row.get("init"):
                lines += [f"{row['model']} starts from `{row['init']}`.", ""]
        lines += [f"- {v}" for v in results["verdicts"]] + [""]
    if results.get("tuning"):
        lines += _tuning(results["tuning"])
    if results.get("bn_effect"):
        lines += _bn_effect(results["bn_effect"])
    lines += _costs(results["costs"])
    for key in ("curves", "frontier", "per_class"):
        lines += [f"![{key}]({OUTPUTS[key]})", ""]
    return "\n".join(lines)


def write_outputs(plan: BenchmarkPlan, results: dict[str, Any]) -> dict[str, Path]:
    """Write every output of ``results`` into ``plan.out``; returns their paths by role."""
    paths = {k: plan.out / v for k, v in OUTPUTS.items()}
    write_json_atomic(paths["json"], results)
    write_bytes_atomic(paths["csv"], _csv(results["protocols"]).encode())
    plot_frontier(results["models"], paths["frontier"], published_points())
    plot_per_class_f1(results["models"], paths["per_class"])
    plot_curves(results["models"], paths["curves"], results["headline"])
    write_bytes_atomic(paths["report"], _markdown(results).encode())
    return paths
