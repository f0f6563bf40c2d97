"""Gather a benchmark's results: test scores over seeds, budget curves, profiles, per protocol.

One row per model and protocol: ``model``, ``params``, ``storage_bytes``, ``gmacs``,
``throughput`` (CPU images/s), ``macro_f1`` and ``miou`` as ``{"mean", "std", "values"}`` over
seeds, per-class F1 means, the learning rate and BatchNorm statistics of its runs, and its
``curve``: val and test macro-F1 over seeds at every point of the budget. The comparisons
(claims, verdicts, the Pareto front) are :mod:`lale.benchmark.claims`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lale.benchmark.plan import TUNE, BenchmarkPlan, Protocol, RunSpec
from lale.benchmark.runner import RUN_RECORD, BenchmarkError
from lale.benchmark.statistics import mean_std
from lale.run_layout import TEST_METRICS, TEST_PER_IMAGE
from lale.training.curve import CURVE

__all__ = [
    "collect_rows",
    "load_per_image",
    "profile_entries",
    "published_points",
    "run_costs",
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


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _curve(specs: list[RunSpec]) -> dict[str, Any] | None:
    """Val and test macro-F1 over seeds at each point of the budget (``None``: no curve)."""
    per_seed = [(_read(s.run_dir / CURVE) or {}).get("points", []) for s in specs]
    if not per_seed or not all(per_seed):
        return None
    length = min(len(p) for p in per_seed)
    points = []
    for i in range(length):
        at = [p[i] for p in per_seed]
        point: dict[str, Any] = {
            "fraction": statistics.fmean(a["fraction"] for a in at),
            "step": statistics.fmean(a["step"] for a in at),
            "images": statistics.fmean(a["images"] for a in at),
            "train_seconds": statistics.fmean(a["train_seconds"] for a in at),
            "val_f1": mean_std([a["val_f1"] for a in at]),
            "test_f1": mean_std([a["test_f1"] for a in at]),
        }
        if all("bn" in a for a in at):
            point["bn"] = {
                kind: mean_std([a["bn"][kind]["test_f1"] for a in at])
                for kind in ("running", "recompute")
            }
            point["bn_gain"] = mean_std(
                [a["bn"]["recompute"]["test_f1"] - a["bn"]["running"]["test_f1"] for a in at]
            )
        points.append(point)
    seconds = [sum(x["score_seconds"] for x in p) for p in per_seed]
    return {"points": points, "score_seconds": seconds}


def collect_rows(
    plan: BenchmarkPlan, protocol: Protocol, lrs: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One row per model with its test scores over the plan's seeds under ``protocol``.

    Profiles (params, GMACs, throughput) are added by :func:`profile_entries`.

    Raises:
        BenchmarkError: A run of the protocol did not finish.
    """
    runs = plan.runs(protocol, lrs)
    rows = []
    for entry in plan.entries:
        specs = [r for r in runs if r.entry == entry]
        scores, records = [], []
        for spec in specs:
            path = spec.run_dir / TEST_METRICS
            if not path.is_file():
                raise BenchmarkError(
                    f"{spec.run_dir} has no {TEST_METRICS}: the run did not finish"
                )
            scores.append(json.loads(path.read_text()))
            records.append(_read(spec.run_dir / RUN_RECORD) or {})
        names = list(scores[0]["per_class"])
        rows.append(
            {
                "model": entry.label,
                "arch": entry.model,
                "options": entry.kwargs,
                "init": entry.init,
                "family": _family(entry.model),
                "seeds": list(plan.seeds),
                "lr": specs[0].lr,
                "bn_stats": specs[0].bn_stats,
                "run_dirs": [str(s.run_dir) for s in specs],
                "macro_f1": mean_std([s["macro"]["f1"] for s in scores]),
                "miou": mean_std([s["macro"]["iou"] for s in scores]),
                "per_class_f1": {
                    n: _mean_of([s["per_class"][n]["f1"] for s in scores]) for n in names
                },
                "train": {
                    k: [r.get(k) for r in records]
                    for k in (
                        "steps",
                        "epochs",
                        "pixels_seen",
                        "train_images_per_s",
                        "train_seconds",
                        "bn_recompute_seconds",
                    )
                },
                "curve": _curve(specs),
                "support": [c["support"] for c in scores[0]["per_class"].values()],
            }
        )
    return rows


def load_per_image(row: dict[str, Any]) -> tuple[list[str], list[NDArray[Any]]] | None:
    """The per-image test confusion matrices of every seed of ``row`` (``None``: missing).

    Read with ``allow_pickle=False``: nothing in a run directory is ever unpickled.

    Raises:
        BenchmarkError: The seeds' files name different test images.
    """
    names: list[str] | None = None
    mats = []
    for run_dir in row["run_dirs"]:
        path = Path(run_dir) / TEST_PER_IMAGE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            seed_names = [str(n) for n in data["names"]]
            mats.append(np.asarray(data["confusion"]))
        if names is not None and seed_names != names:
            raise BenchmarkError(f"{path}: other test images than the model's other seeds")
        names = seed_names
    return (names or []), mats


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
    for row in rows:
        model, config = load_run(row["run_dirs"][0])
        row["params"] = count_parameters(model)
        row["storage_bytes"] = storage_bytes(model)
        row["gmacs"] = count_macs(model, plan.profile_size, config.in_channels) / 1e9
        row["train_gmacs_per_image"] = (
            3 * count_macs(model, plan.recipe.crop_size, config.in_channels) / 1e9
        )
        built[row["model"]] = (model, config.in_channels)
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
    settings["train_gmacs"] = (
        "training GMACs per image = 3 × the forward pass at the training crop size "
        "(forward + backward ≈ 3 forwards)"
    )
    return settings


def run_costs(
    plan: BenchmarkPlan, rows: list[dict[str, Any]], tuning: dict[str, Any] | None
) -> dict[str, Any]:
    """What each protocol option cost, in seconds: per model, mean over its runs."""

    def mean(values: list[Any]) -> float | None:
        vals = [float(v) for v in values if v is not None]
        return statistics.fmean(vals) if vals else None

    models = {}
    for row in rows:
        curve = row.get("curve") or {}
        models[row["model"]] = {
            "run_seconds": mean(row["train"]["train_seconds"]),
            "curve_scoring_seconds": mean(curve.get("score_seconds", [])),
            "bn_recompute_seconds": mean(row["train"]["bn_recompute_seconds"]),
        }
    tuning_seconds = None
    if tuning is not None:
        tuning_seconds = {}
        for label, record in tuning["models"].items():
            own = [
                _read(Path(d) / RUN_RECORD) or {}
                for d in record["runs"].values()
                if Path(d).is_relative_to(plan.out / TUNE)  # not the reused one-recipe run
            ]
            tuning_seconds[label] = sum(float(r.get("train_seconds") or 0) for r in own)
    return {"models": models, "tuning_seconds": tuning_seconds}
