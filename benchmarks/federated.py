"""Federated against centralized training on the embedded data: F1, MB per round, MB to an F1.

Usage (from the repository root)::

    .venv/bin/python benchmarks/federated.py                      # the recorded run
    .venv/bin/python benchmarks/federated.py --rounds 4 --seeds 0  # a quick look

Writes a synthetic dataset with regions (``lale synth --scene-size``: patches cut from larger
scenes, so neighbouring patches share land cover and the sites are non-IID), then for every
model × seed runs ``lale federate --split-by region --num-sites 3 --compare-centralized`` as a
user types it (Flower's simulation engine, one client at a time) and reads ``federation.json``.
UNet-EfficientNet-b0 runs with ``--fedbn`` (its BatchNorm statistics stay at each site).

Records per model: the best pooled val macro-F1 and test macro-F1 after R rounds (mean ± std
over seeds), the centralized run's at the same total steps, MB per round per site (model
down + update up), MB until the federation first reached 90 % of the centralized val F1, and
whether each learned at this budget (test macro-F1 at least twice the majority-class F1, the
benchmark's rule). Writes ``benchmarks/results/federated_cpu.json`` and ``federated_cpu.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import flwr
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LALE = str(Path(sys.executable).with_name("lale"))
MODELS = [("lale_s1", []), ("segformer", []), ("unet", ["--fedbn"])]
REACH = 0.9
"""MB to reach this fraction of the centralized run's val macro-F1."""


def _mean_std(values: list[float | None]) -> dict[str, float | None]:
    got = [v for v in values if v is not None]
    if not got:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(got) if len(got) > 1 else 0.0
    return {"mean": statistics.fmean(got), "std": std, "n": len(got)}


def _mb_to(per_round: list[dict[str, Any]], target: float) -> float | None:
    spent = 0.0
    for r in per_round:
        spent += sum(s["bytes_down"] + s["bytes_up"] for s in r["sites"].values()) / 1e6
        if r["global_val_macro_f1"] is not None and r["global_val_macro_f1"] >= target:
            return spent
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--local-steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop-size", type=int, default=128)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lale-federated-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [
                LALE,
                "synth",
                str(data),
                "--train",
                "144",
                "--val",
                "48",
                "--test",
                "48",
                "--size",
                "128",
                "--scene-size",
                "512",
                "--no-mosaic",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for model, extra in MODELS:
            for seed in args.seeds:
                out = Path(tmp) / f"{model}-{seed}"
                started = time.perf_counter()
                subprocess.run(
                    [
                        LALE,
                        "federate",
                        "--data",
                        str(data),
                        "--split-by",
                        "region",
                        "--num-sites",
                        "3",
                        "--out",
                        str(out),
                        "--model",
                        model,
                        "--rounds",
                        str(args.rounds),
                        "--local-steps",
                        str(args.local_steps),
                        "--batch-size",
                        str(args.batch_size),
                        "--crop-size",
                        str(args.crop_size),
                        "--seed",
                        str(seed),
                        "--compare-centralized",
                        "--no-progress",
                        *extra,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                rec = json.loads((out / "federation.json").read_text())
                central = rec["centralized"]
                target = (
                    None
                    if central["best_val_macro_f1"] is None
                    else (REACH * central["best_val_macro_f1"])
                )
                runs.append(
                    {
                        "model": model,
                        "seed": seed,
                        "fedbn": rec["fedbn"],
                        "fed_val": rec["best_val_macro_f1"],
                        "fed_test": rec["test_macro_f1"],
                        "central_val": central["best_val_macro_f1"],
                        "central_test": central["test_macro_f1"],
                        "fed_learned": rec["learned"]["federated"],
                        "central_learned": central["learned"],
                        "mb_per_round_per_site": rec["mb_per_round_per_site"],
                        "model_mb": rec["model_mb"],
                        "mb_total": rec["mb_total"],
                        "mb_to_reach": None if target is None else _mb_to(rec["per_round"], target),
                        "steps": central["steps"],
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for model, _ in MODELS:
        rows = [r for r in runs if r["model"] == model]
        summary[model] = {
            key: _mean_std([r[key] for r in rows])
            for key in ("fed_val", "fed_test", "central_val", "central_test", "mb_to_reach")
        }
        summary[model].update(
            model_mb=rows[0]["model_mb"],
            mb_per_round_per_site=rows[0]["mb_per_round_per_site"],
            fedbn=rows[0]["fedbn"],
            reached=sum(r["mb_to_reach"] is not None for r in rows),
            fed_learned=sum(bool(r["fed_learned"]) for r in rows),
            central_learned=sum(bool(r["central_learned"]) for r in rows),
            runs=len(rows),
        )
    setup = {
        "device": platform.processor() or platform.machine(),
        "cpus": torch.get_num_threads(),
        "dtype": "float32",
        "torch": torch.__version__,
        "flwr": flwr.__version__,
        "python": platform.python_version(),
        "rounds": args.rounds,
        "local_steps": args.local_steps,
        "batch_size": args.batch_size,
        "crop_size": args.crop_size,
        "seeds": args.seeds,
        "sites": "3, --split-by region",
        "data": "lale synth --train 144 --val 48 --test 48 --size 128 --scene-size 512",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "federated_cpu.json").write_text(
        json.dumps({"setup": setup, "summary": summary, "runs": runs}, indent=2) + "\n"
    )
    (RESULTS / "federated_cpu.md").write_text(_markdown(setup, summary))


def _pm(stat: dict[str, float | None], scale: float = 100.0, digits: int = 1) -> str:
    if stat["mean"] is None:
        return "—"
    return f"{stat['mean'] * scale:.{digits}f} ± {(stat['std'] or 0) * scale:.{digits}f}"


def _markdown(setup: dict[str, Any], summary: dict[str, Any]) -> str:
    lines = [
        "# Federated against centralized training (CPU)",
        "",
        f"`.venv/bin/python benchmarks/federated.py` · {setup['data']} · {setup['sites']} · "
        f"{setup['rounds']} rounds × {setup['local_steps']} local steps (batch "
        f"{setup['batch_size']}, crop {setup['crop_size']}) · centralized: the same model on "
        f"the union, same total steps · seeds {setup['seeds']} · {setup['dtype']} · "
        f"torch {setup['torch']}, flwr {setup['flwr']}, Python {setup['python']} · "
        f"{setup['cpus']} CPU threads ({setup['device']}).",
        "",
        "Macro-F1 in percent, mean ± std over seeds. MB per round per site: the model down and "
        "the update up (Flower's count of array bytes). MB to reach: the federation's training "
        f"traffic, all sites, until its pooled val macro-F1 first reached {REACH:.0%} of the "
        "centralized run's (reached in n of the seeds).",
        "",
        "| model | FedBN | model MB | MB / round / site | federated val | federated test | "
        "centralized val | centralized test | MB to reach | learned (fed / central) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for model, s in summary.items():
        reach = _pm(s["mb_to_reach"], 1.0, 0) + f" ({s['reached']} of {s['runs']})"
        lines.append(
            f"| {model} | {'yes' if s['fedbn'] else 'no'} | {s['model_mb']:.2f} | "
            f"{s['mb_per_round_per_site']:.2f} | {_pm(s['fed_val'])} | {_pm(s['fed_test'])} | "
            f"{_pm(s['central_val'])} | {_pm(s['central_test'])} | {reach} | "
            f"{s['fed_learned']}/{s['runs']} · {s['central_learned']}/{s['runs']} |"
        )
    lines += [
        "",
        "Learned: test macro-F1 at least twice the majority-class F1 (lale benchmark's rule). "
        "A model that did not learn at this budget is not compared: its F1 says nothing about "
        "federated against centralized training. The budget is sized for a 2-core CPU; the "
        "F1 values are far below a converged model's.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
