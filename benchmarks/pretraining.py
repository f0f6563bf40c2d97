"""Pretraining LALE's encoder: top-1 against a timm model of its size, then PT against scratch.

Usage (from the repository root)::

    .venv/bin/python benchmarks/pretraining.py                 # about 25 minutes on 2 CPU cores
    .venv/bin/python benchmarks/pretraining.py --epochs 4 --train 400 --seeds 1   # a smoke run

1. **A small ImageFolder.** ``lale synth`` writes ``--train`` + ``--val`` synthetic land-cover
   patches of ``--size``² with seed 7 (the embedded benchmark data use seed 0, so no image is
   shared); each patch goes into the folder of its mask's most frequent class. This is the
   classification task lale can build offline, not ImageNet.
2. **Top-1 in one run.** ``lale pretrain`` trains lale_s1, lale_s2 and timm's
   mobilenetv4_conv_small (the library entry point; the command takes LALE models) with the same
   recipe, epochs and seed; top-1/top-5 on the val folder.
3. **PT against scratch.** ``lale benchmark --preset quick --models lale_s1 --ablation
   pretraining --init RUN`` trains lale_s1 from random weights and from step 2's encoder on the
   embedded data at the quick preset's budget (240 steps), ``--seeds`` seeds, the paired test.
4. **What an ImageNet run costs.** Training steps (forward, backward, AdamW) of the three
   models timed in turns in one process at the pretraining size and batch, extrapolated to
   ImageNet-1k's 1.28 M training images at 224² (cost ∝ pixels) for 300 epochs; on this CPU, so
   a GPU number needs the same script run there. ``--throughput-only`` repeats just this step
   on the saved results (on an otherwise idle machine).

Writes ``benchmarks/results/pretraining_cpu.json`` and ``pretraining_cpu.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from lale import cli
from lale.profiling import collect_environment

RESULTS = Path(__file__).resolve().parent / "results"
IMAGENET_TRAIN = 1_281_167
MODELS = ("lale_s1", "lale_s2", "mobilenetv4_conv_small")
runner = CliRunner()


def invoke(args: list[str]) -> str:
    result = runner.invoke(cli.app, args)
    if result.exit_code != 0:
        raise SystemExit(f"lale {' '.join(args)} failed:\n{result.output}")
    return result.output


def image_folder(root: Path, train: int, val: int, size: int) -> dict[str, Any]:
    """Synthetic patches sorted into class folders by their mask's most frequent class."""
    from lale.data.io import read_mask
    from lale.data.schema import resolve_schema

    synth = root / "synth"
    invoke(["synth", str(synth), "--train", str(train), "--val", str(val), "--test", "0",
            "--size", str(size), "--seed", "7", "--no-mosaic"])  # fmt: skip
    schema = resolve_schema(synth, None)
    counts: dict[str, Counter[str]] = {}
    for split in ("train", "val"):
        counts[split] = Counter()
        for image in sorted((synth / split / "images").glob("*.png")):
            labels = read_mask(synth / split / "masks" / image.name, schema).labels
            known = labels[labels < schema.num_classes]
            name = schema.names[int(np.bincount(known, minlength=schema.num_classes).argmax())]
            target = root / "folder" / split / name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, target / image.name)
            counts[split][name] += 1
    for name in counts["train"]:  # a class only in train would break the val folder's classes
        (root / "folder" / "val" / name).mkdir(parents=True, exist_ok=True)
    for name in counts["val"]:
        (root / "folder" / "train" / name).mkdir(parents=True, exist_ok=True)
    return {s: dict(sorted(c.items())) for s, c in counts.items()}


def pretrain_all(folder: Path, runs: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from lale.training.pretrain import PretrainOptions, pretrain
    from lale.training.pretrain_data import AugmentSpec
    from lale.training.pretrain_task import PretrainRecipe

    rows = []
    recipe = PretrainRecipe(epochs=args.epochs, batch_size=args.batch, lr=args.lr, warmup_epochs=1)
    augment = AugmentSpec(img_size=args.size)
    for model in MODELS:
        out = runs / model
        if model.startswith("lale_"):  # the command a user types
            start = time.perf_counter()
            invoke(["pretrain", "--data", str(folder), "--out", str(out), "--model", model,
                    "--epochs", str(args.epochs), "--batch-size", str(args.batch),
                    "--lr", str(args.lr), "--warmup-epochs", "1", "--img-size", str(args.size),
                    "--no-progress", "--checkpoint-every", "0"])  # fmt: skip
        else:  # timm's own model through the same library path and recipe
            start = time.perf_counter()
            options = PretrainOptions(folder, out, model=model, recipe=recipe, augment=augment,
                                      progress=False, checkpoint_every=0)  # fmt: skip
            pretrain(options, say=lambda _m: None)
        seconds = time.perf_counter() - start
        scores = json.loads((out / "val_metrics.json").read_text())
        import timm

        params = sum(p.numel() for p in timm.create_model(model, num_classes=0).parameters())
        images = sum(1 for _ in (folder / "train").rglob("*.png")) * args.epochs
        rows.append(
            {
                "model": model,
                "encoder_params_M": round(params / 1e6, 3),
                "top1": scores["top1"],
                "top5": scores.get("top5"),
                "best_epoch": scores["epoch"],
                "seconds": round(seconds, 1),
                "run_images_per_s": round(images / seconds, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def train_throughput(size: int, batch: int, rounds: int = 3, steps: int = 10) -> dict[str, float]:
    """Training images per second of each model (forward, backward, AdamW step), in one process.

    The models take turns, ``rounds`` times ``steps`` steps each after two warm-up steps; the
    median round counts. This, not the pretraining wall time (which includes data loading and
    validation, and shares the machine with whatever else runs), feeds the ImageNet estimate.
    """
    import statistics

    import timm
    import torch

    models = {m: timm.create_model(m, num_classes=1000) for m in MODELS}
    optimizers = {m: torch.optim.AdamW(net.parameters()) for m, net in models.items()}
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    times: dict[str, list[float]] = {m: [] for m in models}

    def step(m: str) -> None:
        loss = torch.nn.functional.cross_entropy(models[m](x), y)
        optimizers[m].zero_grad()
        loss.backward()
        optimizers[m].step()

    for m in models:
        for _ in range(2):
            step(m)
    for _ in range(rounds):
        for m in models:
            start = time.perf_counter()
            for _ in range(steps):
                step(m)
            times[m].append(time.perf_counter() - start)
    return {m: round(batch * steps / statistics.median(t), 1) for m, t in times.items()}


def ablation(runs: Path, init: Path, seeds: int) -> dict[str, Any]:
    out = runs / "ablation"
    start = time.perf_counter()
    invoke(["benchmark", "--preset", "quick", "--models", "lale_s1", "--ablation",
            "pretraining", "--init", str(init), "--seeds", str(seeds), "--out", str(out),
            "--no-progress"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    rows = {  # the PT weights are step 2's lale_s1 run (its temporary path is not recorded)
        r["model"]: {"macro_f1": r["macro_f1"], "init": r.get("init") and "step 2's lale_s1 run"}
        for r in results["models"]
    }
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "seeds": seeds,
        "budget": results["plan"]["budget"],
        "models": rows,
        "verdicts": results["verdicts"],
    }


def markdown(record: dict[str, Any]) -> str:
    env = record["environment"]
    versions = env["versions"]
    val = record["folder"]["val"]
    majority = max(val.values()) / sum(val.values())
    lines = [
        "# Pretraining LALE's encoder (CPU)",
        "",
        f"`benchmarks/pretraining.py`, {env['cpu']} ({env['torch_threads']} threads), torch "
        f"{versions['torch']}, timm {versions['timm']}, fp32, one run.",
        "",
        f"ImageFolder: {record['folder']['train_total']} train / {record['folder']['val_total']}"
        f" val synthetic {record['args']['size']}² patches (seed 7), class = the mask's most "
        "frequent class: " + json.dumps(record["folder"]["train"]) + f" (train). Always "
        f"answering the most frequent val class scores {100 * majority:.1f} % top-1.",
        "",
        f"Same recipe for all three: {record['args']['epochs']} epochs, batch "
        f"{record['args']['batch']}, AdamW lr {record['args']['lr']}, cosine with 1 warm-up "
        "epoch, RandAugment m9, random erasing 0.25, Mixup 0.8 / CutMix 1.0, smoothing 0.1, "
        "seed 0.",
        "",
        "| model | encoder params | val top-1 | val top-5 | best epoch | training step img/s "
        "| ImageNet 300 ep on this CPU (core-hours) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["pretrain"]:
        lines.append(
            f"| {r['model']} | {r['encoder_params_M']:.2f} M | {100 * r['top1']:.1f} % | "
            f"{100 * (r['top5'] or 0):.1f} % | {r['best_epoch']} | {r['train_images_per_s']:.0f} | "
            f"{r['imagenet_core_hours']:,.0f} |"
        )
    lines += [
        "",
        "Training step img/s: forward + backward + AdamW at the pretraining size and batch, the "
        "three models in turns in one process, median of 3 rounds. The ImageNet column "
        "extrapolates it to 1.28 M images at 224² (cost ∝ pixels) for 300 epochs, times the "
        "threads used: an estimate from this CPU, not a GPU measurement.",
    ]
    ab = record["ablation"]
    lines += ["", f"## PT against scratch: lale_s1, quick preset, {ab['seeds']} seeds", ""]
    for name, row in ab["models"].items():
        f1 = row["macro_f1"]
        spread = "" if f1.get("std") is None else f" ± {100 * f1['std']:.2f}"
        lines.append(
            f"- {name}: macro-F1 {100 * f1['mean']:.2f} %{spread} (init: {row['init'] or 'random'})"
        )
    lines += [f"- {v}" for v in ab["verdicts"]]
    return "\n".join(lines) + "\n"


def add_throughput(record: dict[str, Any]) -> None:
    """Measure training throughput now and extrapolate an ImageNet-1k run from it."""
    args = record["args"]
    speed = train_throughput(args["size"], args["batch"])
    cores = collect_environment().torch_threads
    for r in record["pretrain"]:
        if "run_images_per_s" not in r:  # results of an earlier version of this script
            r["run_images_per_s"] = r.pop("train_images_per_s")
        r["train_images_per_s"] = speed[r["model"]]
        # cost ∝ pixels: 224² ImageNet images against our size², 300 epochs
        seconds = IMAGENET_TRAIN * 300 * (224 / args["size"]) ** 2 / speed[r["model"]]
        r["imagenet_core_hours"] = round(seconds / 3600 * cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1600)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="Only re-measure throughput and the ImageNet estimate in the saved results.",
    )
    args = parser.parse_args()
    path = RESULTS / "pretraining_cpu.json"
    if args.throughput_only:
        record = json.loads(path.read_text())
        record["throughput_environment"] = asdict(collect_environment())
    else:
        with tempfile.TemporaryDirectory(prefix="lale-pretraining-") as tmp:
            root = Path(tmp)
            counts = image_folder(root, args.train, args.val, args.size)
            rows = pretrain_all(root / "folder", root / "runs", args)
            ab = ablation(root / "runs", root / "runs" / "lale_s1", args.seeds)
        record = {
            "environment": asdict(collect_environment()),
            "args": vars(args),
            "folder": {
                **counts,
                "train_total": sum(counts["train"].values()),
                "val_total": sum(counts["val"].values()),
            },
            "pretrain": rows,
            "ablation": ab,
        }
    add_throughput(record)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "pretraining_cpu.md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    sys.exit(main())
