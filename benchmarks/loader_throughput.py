"""Data-loader throughput against what training lale_t consumes, on this machine.

Usage (from the repository root; a few minutes on a 2-core CPU)::

    .venv/bin/python benchmarks/loader_throughput.py
    .venv/bin/python benchmarks/loader_throughput.py --workers 0 1 2 --rounds 5

Measured in one run, in interleaved rounds (every loader one epoch, then two training steps,
repeated) so that load changes on a shared machine hit all measurements alike; medians count:

- **loader**: images/s through a ``torch.utils.data.DataLoader`` (persistent workers) over a
  synthetic ARAS400k-layout split (PNG decode, colour-mask lookup, random crop) followed by the
  training batch transform (flips, rot90, brightness/contrast, normalisation) in the main
  process, at batch 24, for each worker count. A second dataset of larger scenes (random 256²
  crops of 512² images) shows the cost of cropping from whole images.
- **training**: images/s of one lale_t training step (forward, cross-entropy, backward, gradient
  clipping, AdamW) at batch 24 on 256² crops — what the loader has to keep up with.
- **fed training**: the same steps fed by the loader; the share of each step spent waiting for
  the next batch (the number that says whether training waits on data).

Writes ``benchmarks/results/loader_throughput.json`` (every number with its context) and
``loader_throughput.md``. The target is loader throughput >= 3× the training consumption.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lale.data.dataset import SegmentationDataset
from lale.data.schema import ARAS400K
from lale.data.synthetic import write_dataset
from lale.data.transforms import BatchTransform, train_transform
from lale.models import create_model
from lale.profiling import collect_environment

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 3.0


def make_loader(dataset: SegmentationDataset, batch: int, workers: int) -> DataLoader:
    """A shuffling training loader whose workers stay alive between epochs."""
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )


def run_epoch(loader: DataLoader, transform: BatchTransform) -> tuple[int, float]:
    """Images and seconds of one epoch through the loader and the batch transform."""
    start, n = time.perf_counter(), 0
    for image, mask in loader:
        x, _ = transform(image, mask)
        n += x.shape[0]
    return n, time.perf_counter() - start


def component_times(
    dataset: SegmentationDataset, transform: BatchTransform, batch: int
) -> dict[str, float]:
    """Per-image milliseconds of reading a sample and of the batch transform, in this process."""
    n = min(len(dataset), 4 * batch)
    start = time.perf_counter()
    samples = [dataset[i] for i in range(n)]
    read = (time.perf_counter() - start) / n
    image = torch.stack([s[0] for s in samples[:batch]])
    mask = torch.stack([s[1] for s in samples[:batch]])
    start = time.perf_counter()
    for _ in range(5):
        transform(image, mask)
    augment = (time.perf_counter() - start) / (5 * batch)
    return {"read_ms_per_image": read * 1e3, "transform_ms_per_image": augment * 1e3}


def training_setup(
    batch: int, size: int
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    """lale_t with AdamW and one random normalised batch of ``size``² crops."""
    torch.manual_seed(0)
    model = create_model("lale_t", num_classes=ARAS400K.num_classes).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, ARAS400K.num_classes, (batch, size, size))
    return model, opt, x, y


def step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    """One training step: forward, cross-entropy (ignore 255), backward, clip, AdamW."""
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, ignore_index=ARAS400K.ignore_index)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def fed_training(
    dataset: SegmentationDataset,
    transform: BatchTransform,
    batch: int,
    workers: int,
    steps: int,
    warmup: int = 1,
) -> dict[str, Any]:
    """Training steps fed by the loader: time waiting for each batch vs the whole step."""
    torch.manual_seed(0)
    model = create_model("lale_t", num_classes=ARAS400K.num_classes).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    waits, totals, it = [], [], iter(loader)
    for i in range(warmup + steps):
        start = time.perf_counter()
        try:
            image, mask = next(it)
        except StopIteration:
            it = iter(loader)
            image, mask = next(it)
        x, y = transform(image, mask)
        got = time.perf_counter()
        step(model, opt, x, y)
        if i >= warmup:
            waits.append(got - start)
            totals.append(time.perf_counter() - start)
    return {
        "workers": workers,
        "wait_s": [round(w, 4) for w in waits],
        "step_s": [round(t, 4) for t in totals],
        "wait_share": sum(waits) / sum(totals),
        "images_per_s": batch * len(totals) / sum(totals),
    }


def _load(result: dict[str, Any], when: str) -> str:
    return "/".join(f"{v:.2f}" for v in result["load_average_1_5_15min"][when])


def markdown(result: dict[str, Any], command: str) -> str:
    env, s = result["environment"], result["settings"]
    v = env["versions"]
    train = result["training"]["images_per_s"]
    fastest = min(result["training"]["step_s"])
    best = s["batch"] / fastest
    lines = [
        "# Data-loader throughput vs lale_t training consumption",
        "",
        f"Generated by `{command}`. Loader: synthetic ARAS400k-layout PNGs through a torch "
        "DataLoader (random crop, colour-mask lookup) and the training batch transform "
        "(flips, rot90, brightness/contrast, normalisation) in the main process.",
        "",
        f"- **device**: {env['device']} ({env['device_type']}), {env['cpu_count']} logical CPUs;"
        f" {env['platform']}",
        f"- **threads**: torch {env['torch_threads']} in the main process, 1 per loader worker",
        f"- **batch**: {s['batch']}, crops {s['crop']}², training dtype fp32",
        f"- **versions**: python {v['python']}, torch {v['torch']}, numpy {v['numpy']}, "
        f"lale {v['lale']}",
        f"- **date**: {env['date']}",
        f"- **load average** (1/5/15 min) before {_load(result, 'before')}, after "
        f"{_load(result, 'after')} (other processes on the machine slow both measurements)",
        "",
        "Training step (lale_t, forward + cross-entropy + backward + gradient clipping + AdamW, "
        f"batch {s['batch']}): median {result['training']['median_step_s']:.3f} s → "
        f"**{train:.1f} images/s** needed. Target: loader >= {TARGET:g}× that = "
        f"{TARGET * train:.0f} images/s. The fastest step, {fastest:.3f} s "
        f"({best:.1f} images/s), is the closest to an idle machine: the last column compares "
        "the loader with it, a conservative bound when the machine is shared.",
        "",
        "| dataset | workers | loader images/s | × training need (median step) | meets target "
        "| × fastest step |",
        "| --- | ---: | ---: | ---: | :---: | ---: |",
    ]
    for name, runs in result["loader"].items():
        for r in runs:
            ratio = r["images_per_s"] / train
            ok = "yes" if ratio >= TARGET else "**no**"
            lines.append(
                f"| {name} | {r['workers']} | {r['images_per_s']:.0f} | {ratio:.1f}× | {ok} "
                f"| {r['images_per_s'] / best:.1f}× |"
            )
    c = result["components"]
    lines += [
        "",
        f"Per image, in one process: reading a sample {c['read_ms_per_image']:.2f} ms, "
        f"batch transform {c['transform_ms_per_image']:.3f} ms.",
        "",
        "Training fed by the loader (time waiting for the next batch, share of each step):",
        "",
        "| workers | wait share | images/s |",
        "| ---: | ---: | ---: |",
    ]
    for r in result["fed_training"]:
        lines.append(
            f"| {r['workers']} | {100 * r['wait_share']:.1f} % | {r['images_per_s']:.1f} |"
        )
    lines += [
        "",
        "With 0 workers the main process reads every batch between steps, so the wait share is "
        "the reading time; with workers the next batches are read while the step runs (on a "
        "2-core machine the workers share the cores with the training threads).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-images", type=int, default=240, help="256² patches in the split")
    p.add_argument("--scenes", type=int, default=48, help="512² scenes for the crop test")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--steps", type=int, default=2, help="training steps per round")
    p.add_argument("--fed-steps", type=int, default=4, help="timed steps fed by the loader")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    crop = 256
    if min(args.train_images, args.scenes) < args.batch:
        raise SystemExit("--train-images and --scenes must be at least --batch (full batches)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lale-loader-") as tmp:
        patches, scenes = Path(tmp) / "patches", Path(tmp) / "scenes"
        print("writing synthetic data …", flush=True)
        write_dataset(patches, train=args.train_images, val=0, test=0, size=crop, workers=2)
        write_dataset(scenes, train=args.scenes, val=0, test=0, size=2 * crop, seed=1, workers=2)
        transform = train_transform(ARAS400K, generator=torch.Generator().manual_seed(0))
        datasets = {
            f"{crop}² patches": SegmentationDataset(patches, "train", crop_size=crop),
            f"{2 * crop}² scenes, {crop}² crops": SegmentationDataset(
                scenes, "train", crop_size=crop
            ),
        }
        # Every loader and the training step are timed in interleaved rounds, so that load
        # changes on a shared machine hit all of them alike; medians over the rounds count.
        loaders = {
            (n, w): make_loader(ds, args.batch, w)
            for n, ds in datasets.items()
            for w in args.workers
        }
        model, opt, x, y = training_setup(args.batch, crop)
        for loader in loaders.values():
            run_epoch(loader, transform)  # warm-up: starts the workers
        for _ in range(2):
            step(model, opt, x, y)
        epochs: dict[tuple[str, int], list[float]] = {k: [] for k in loaders}
        images: dict[tuple[str, int], int] = {}
        steps: list[float] = []
        for r in range(args.rounds):
            for key, loader in loaders.items():
                images[key], seconds = run_epoch(loader, transform)
                epochs[key].append(seconds)
            for _ in range(args.steps):
                start = time.perf_counter()
                step(model, opt, x, y)
                steps.append(time.perf_counter() - start)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        del loaders
        training = {
            "step_s": [round(t, 4) for t in steps],
            "median_step_s": statistics.median(steps),
            "images_per_s": args.batch / statistics.median(steps),
        }
        print(f"training lale_t: {training['images_per_s']:.1f} img/s", flush=True)
        loader_results: dict[str, list[dict[str, Any]]] = {n: [] for n in datasets}
        for (name, w), times in epochs.items():
            rate = images[(name, w)] / statistics.median(times)
            loader_results[name].append(
                {
                    "workers": w,
                    "images_per_epoch": images[(name, w)],
                    "epoch_s": [round(t, 4) for t in times],
                    "images_per_s": rate,
                }
            )
            print(f"loader  {name:28s} workers {w}: {rate:7.1f} img/s", flush=True)
        components = component_times(datasets[f"{crop}² patches"], transform, args.batch)
        fed = []
        for w in sorted({0, 1} & set(args.workers)):
            r = fed_training(datasets[f"{crop}² patches"], transform, args.batch, w, args.fed_steps)
            print(f"fed training workers {w}: wait {100 * r['wait_share']:.1f} %", flush=True)
            fed.append(r)
    result = {
        "benchmark": "loader_throughput",
        "environment": asdict(collect_environment("cpu")),
        "load_average_1_5_15min": {"before": load_before, "after": os.getloadavg()},
        "settings": {
            "batch": args.batch,
            "crop": crop,
            "train_images": args.train_images,
            "scenes": args.scenes,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "fed_steps": args.fed_steps,
            "target_ratio": TARGET,
        },
        "loader": loader_results,
        "components": components,
        "training": training,
        "fed_training": fed,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "loader_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python benchmarks/loader_throughput.py " + " ".join(sys.argv[1:])
    (args.out / "loader_throughput.md").write_text(markdown(result, command.strip()))
    print(f"wrote {args.out / 'loader_throughput.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
