"""Write a benchmark's outputs into ``OUT``: results.json, results.csv, report.md, figures.

Every file is written atomically: it appears under its name complete, or not at all.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.benchmark.figures import plot_frontier, plot_per_class_f1
from lale.benchmark.plan import BenchmarkPlan
from lale.benchmark.results import claim_line, published_points

__all__ = ["OUTPUTS", "write_outputs"]

OUTPUTS = {
    "json": "results.json",
    "csv": "results.csv",
    "report": "report.md",
    "frontier": "frontier.png",
    "per_class": "per_class_f1.png",
}
_CSV_COLUMNS = (
    "model",
    "family",
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


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {
                **{k: r.get(k) for k in _CSV_COLUMNS[:7]},
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


def _markdown(results: dict[str, Any]) -> str:
    plan, rows = results["plan"], results["models"]
    recipe = plan["recipe"]
    env = results["profile"]["environment"]
    lines = [
        "# lale benchmark",
        "",
        f"- **data**: {plan['data']}",
        f"- **budget**: {plan['budget']['amount']:g} {plan['budget']['kind']} per run; "
        f"seeds {plan['seeds']}",
        f"- **recipe**: AdamW lr {recipe['lr']}, batch {recipe['batch_size']}, "
        f"{recipe['crop_size']}² crops, {recipe['samples_per_epoch'] or 'one per image'} crops "
        f"per epoch, loss {recipe['loss']}, no early stopping",
        f"- **profiled**: {results['profile']['cpu']['size']}² input, CPU batch "
        f"{results['profile']['cpu']['batch_size']}, {env['device']} "
        f"({env['torch_threads']} threads), torch {env['versions'].get('torch')}, "
        f"lale {env['versions'].get('lale')}",
        "",
        "| model | params (M) | GMACs | CPU img/s | test macro-F1 (%) | test mIoU (%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f} | {r['gmacs']:.2f} | "
            f"{r['throughput']:.1f} | {_pm(r['macro_f1'])} | {_pm(r['miou'])} |"
        )
    lines += ["", f"F1 gaps: {results['test']}; 95 % intervals.", ""]
    if results["claims"]:
        lines += ["## Claims", ""] + [f"- {claim_line(c)}" for c in results["claims"]] + [""]
    if results.get("verdicts"):
        lines += [f"## Ablation: {plan['ablation']}", ""]
        lines += [f"- {v}" for v in results["verdicts"]] + [""]
    lines += [f"![frontier]({OUTPUTS['frontier']})", "", f"![per class]({OUTPUTS['per_class']})"]
    return "\n".join(lines) + "\n"


def write_outputs(plan: BenchmarkPlan, results: dict[str, Any]) -> dict[str, Path]:
    """Write every output of ``results`` into ``plan.out``; returns their paths by role."""
    paths = {k: plan.out / v for k, v in OUTPUTS.items()}
    write_json_atomic(paths["json"], results)
    write_bytes_atomic(paths["csv"], _csv(results["models"]).encode())
    plot_frontier(results["models"], paths["frontier"], published_points())
    plot_per_class_f1(results["models"], paths["per_class"])
    write_bytes_atomic(paths["report"], _markdown(results).encode())
    return paths
