"""int8 on a CPU: size, latency and macro-F1 of dynamic and static int8 against fp32 ONNX.

Usage (from the repository root)::

    .venv/bin/python benchmarks/int8.py                        # lale_t and lale_s1, ~20-40 min
    .venv/bin/python benchmarks/int8.py --models lale_t --steps 60 --work /tmp/int8

Makes a synthetic dataset (``lale synth``) and trains each model briefly on it (``lale train
--max-steps``), exports it (``lale.inference.onnx.export``), then writes:

- ``dynamic``: onnxruntime's dynamic int8 (MatMul/Gemm weights), what ``--int8-kind dynamic``
  writes;
- ``static``: static QDQ int8 with the defaults of ``lale export --int8`` (MinMax calibration on
  64 training crops of 256², Conv/MatMul/Gemm quantised, stem, head and attention core kept in
  fp32), and variants of it: Percentile and Entropy calibration, every operator quantised with
  nothing kept (onnxruntime's own default), and the QOperator format.

For each file: size (% of fp32), macro-F1 on the test split (change against fp32 in points),
the integer kernels onnxruntime runs after its graph optimisations (``QLinearConv``,
``QLinearMatMul``, … counted in the optimised graph, ``ORT_ENABLE_ALL``), and latency at batch 1
and 8 on 256² inputs: every model in one process, runs interleaved round after round, median of
the rounds, ratio against fp32. Writes ``benchmarks/results/int8_cpu.{json,md}``. The generated
data and runs are deleted unless ``--work`` is given.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from lale.inference.onnx.backend import OnnxBackend
from lale.inference.onnx.calibration import calibration_patches
from lale.inference.onnx.export import export_onnx
from lale.inference.onnx.quantize import quantize_int8
from lale.inference.onnx.static import quantize_static_int8
from lale.profiling import collect_environment
from lale.training.evaluate import evaluate_run

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SIZE, TARGET_F1 = 0.30, 0.5
VARIANTS: dict[str, dict[str, Any]] = {
    "static": {},
    "static percentile": {"method": "percentile"},
    "static entropy": {"method": "entropy"},
    "static all ops": {"op_types": None, "exclude": ()},
    "static QOperator": {"quant_format": "qoperator"},
}
INT_KERNELS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearSoftmax")


def lale(*args: str) -> None:
    """Run a ``lale`` command in a child process (the CLI a user types)."""
    subprocess.run([sys.executable, "-m", "lale.cli", *args], check=True, capture_output=True)


def session(path: Path, threads: int, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def int_kernels(path: Path, tmp: Path) -> dict[str, int]:
    """Integer operators in the graph onnxruntime actually runs (after optimisation)."""
    optimized = tmp / f"{path.stem}.optimized.onnx"
    session(path, 1, optimized)
    counts = collections.Counter(n.op_type for n in onnx.load(str(optimized)).graph.node)
    optimized.unlink()
    return {k: counts[k] for k in (*INT_KERNELS, "Conv", "MatMul", "QuantizeLinear") if counts[k]}


def latency(files: dict[str, Path], threads: int, batch: int, rounds: int) -> dict[str, float]:
    """Median seconds per forward pass; the models run interleaved, round after round."""
    x = np.random.default_rng(0).standard_normal((batch, 3, 256, 256), dtype=np.float32)
    sessions = {name: session(path, threads) for name, path in files.items()}
    for s in sessions.values():  # warm-up
        s.run(None, {"image": x})
    times: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(rounds):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {"image": x})
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def macro_f1(run: Path, data: Path, path: Path, threads: int) -> float:
    scores = evaluate_run(run, data, "test", forward=OnnxBackend(path, threads=threads))
    return float(scores["macro"]["f1"])


def bench_model(model: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    data, run = work / "data", work / f"run_{model}"
    if not (data / "train").is_dir():
        lale("synth", str(data), "--train", "160", "--val", "16", "--test", "32", "--no-mosaic")
    t0 = time.perf_counter()
    if not (run / "model.safetensors").is_file():
        lale(
            "train", f"--data={data}", f"--out={run}", f"--model={model}",
            f"--max-steps={args.steps}", "--batch-size=8", "--crop-size=128",
            "--loss=dice+ce", "--early-stopping=0", "--no-progress",
        )  # fmt: skip
    train_s = time.perf_counter() - t0
    fp32 = run / "model.onnx"
    if not fp32.is_file():
        export_onnx(run)
    files = {"fp32": fp32, "dynamic": quantize_int8(fp32, run / "dynamic.onnx").path}
    calib = calibration_patches(run, args.calibration, seed=0)
    quant_s: dict[str, float] = {}
    for name, options in VARIANTS.items():
        t0 = time.perf_counter()
        target = run / f"{name.replace(' ', '_')}.onnx"
        files[name] = quantize_static_int8(fp32, calib, target, **options).path
        quant_s[name] = time.perf_counter() - t0
        print(f"{model}: {name} quantised in {quant_s[name]:.0f} s", flush=True)
    f1 = {name: macro_f1(run, data, path, args.threads) for name, path in files.items()}
    kernels = {name: int_kernels(path, work) for name, path in files.items()}
    lat = {
        batch: latency(files, args.threads, batch, rounds)
        for batch, rounds in ((1, args.rounds_b1), (8, args.rounds_b8))
    }
    rows = []
    for name, path in files.items():
        size = path.stat().st_size / fp32.stat().st_size
        delta = (f1[name] - f1["fp32"]) * 100
        ratio1, ratio8 = (lat[b][name] / lat[b]["fp32"] for b in (1, 8))
        rows.append(
            {
                "variant": name,
                "size_bytes": path.stat().st_size,
                "size_vs_fp32": size,
                "macro_f1": f1[name],
                "f1_delta_points": delta,
                "latency_b1_ms": lat[1][name] * 1e3,
                "latency_b8_ms": lat[8][name] * 1e3,
                "latency_ratio_b1": ratio1,
                "latency_ratio_b8": ratio8,
                "int_kernels": kernels[name],
                "quantise_seconds": quant_s.get(name),
                "targets": {
                    "size_under_30pct": size < TARGET_SIZE,
                    "not_slower_b1": ratio1 <= 1.0,
                    "not_slower_b8": ratio8 <= 1.0,
                    "f1_within_half_point": abs(delta) <= TARGET_F1,
                },
            }
        )
    steps = (run / "metrics.csv").read_text().strip().splitlines()[-1].split(",")[1]
    val_f1 = (run / "metrics.csv").read_text().strip().splitlines()[-1].split(",")[6]
    return {
        "model": model,
        "train_steps": int(steps),
        "val_macro_f1_pytorch": float(val_f1),
        "train_seconds": train_s,
        "calibration": calib.describe().replace(str(work), "<work>"),
        "test_images": 32,
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    v = env["versions"]
    lines = [
        "# int8 on a CPU: dynamic and static QDQ against fp32 ONNX",
        "",
        "Generated by `python benchmarks/int8.py`. Briefly trained runs on lale's synthetic data; "
        "macro-F1 on the synthetic test split; latency on 256² inputs, every model in one "
        "process, interleaved rounds, median, ratio against fp32.",
        "",
        f"- **device**: {env['cpu']}, {env['cpu_count']} logical CPUs; {env['platform']}",
        f"- **threads**: {result['threads']} (onnxruntime intra-op); rounds: "
        f"{result['rounds_b1']} at batch 1, {result['rounds_b8']} at batch 8; "
        f"load average before/after: {result['load_before']} / {result['load_after']}",
        f"- **versions**: python {v.get('python')}, onnxruntime {result['onnxruntime']}, "
        f"onnx {result['onnx']}, torch {v.get('torch')}, numpy {v.get('numpy')}",
        f"- **date**: {env['date']}",
        "",
        "Targets: size < 30 % of fp32, not slower than fp32, macro-F1 within 0.5 points.",
    ]
    for m in result["models"]:
        lines += [
            "",
            f"## {m['model']} ({m['train_steps']} training steps, batch 8, 128² crops)",
            "",
            f"Calibration: {m['calibration']}.",
            "",
            "| variant | size | % fp32 | macro-F1 | Δ F1 (pts) | b1 ms | ×fp32 | b8 ms | ×fp32 "
            "| integer kernels run |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in m["rows"]:
            kernels = ", ".join(f"{k} {n}" for k, n in r["int_kernels"].items()) or "-"
            lines.append(
                f"| {r['variant']} | {r['size_bytes'] / 1e6:.2f} MB | {r['size_vs_fp32']:.1%} "
                f"| {r['macro_f1']:.2%} | {r['f1_delta_points']:+.2f} | {r['latency_b1_ms']:.0f} "
                f"| {r['latency_ratio_b1']:.2f} | {r['latency_b8_ms']:.0f} "
                f"| {r['latency_ratio_b8']:.2f} | {kernels} |"
            )
    lines += [
        "",
        "## What the latency columns show",
        "",
        "Sessions use `ORT_ENABLE_ALL`; the last column counts the operators of the graph "
        "onnxruntime actually runs after its optimisations, so the QDQ pairs are fused into "
        "integer kernels (`QLinearConv`, `QLinearMatMul`) and the int8 path is used. QOperator "
        "(the integer operators written in the file) runs the same kernels. On a CPU without "
        "AVX-512 VNNI / AVX-VNNI, onnxruntime's u8s8 kernels multiply with AVX2 `vpmaddubsw`, "
        "little faster than its fp32 convolutions in the blocked NCHWc layout, and the "
        "normalisation, resize and attention-softmax time is unchanged by int8; quantising "
        "every operator (`static all ops`) adds requantisation and `QLinearSoftmax`, slower "
        "and less accurate. Ratios within a few percent of 1.00 are within this shared "
        "machine's noise (see the load average).",
        "",
        "## Targets reached by the default (`static`)",
        "",
    ]
    for m in result["models"]:
        t = next(r for r in m["rows"] if r["variant"] == "static")
        ok = t["targets"]
        lines.append(
            f"- {m['model']}: size {t['size_vs_fp32']:.1%} of fp32 "
            f"({'reached' if ok['size_under_30pct'] else 'NOT reached'}); latency ×"
            f"{t['latency_ratio_b1']:.2f} at batch 1, ×{t['latency_ratio_b8']:.2f} at batch 8 "
            f"({'reached' if ok['not_slower_b1'] and ok['not_slower_b8'] else 'NOT reached'}); "
            f"F1 {t['f1_delta_points']:+.2f} points "
            f"({'reached' if ok['f1_within_half_point'] else 'NOT reached'})"
        )
    return "\n".join(lines) + "\n"


def render(path: Path) -> None:
    """Rewrite the ``.md`` beside a results ``.json`` from it."""
    path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lale_t", "lale_s1"])
    parser.add_argument("--steps", type=int, default=120, help="training steps per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds-b1", type=int, default=15)
    parser.add_argument("--rounds-b8", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=64)
    parser.add_argument("--work", type=Path, help="keep data and runs here (reused if present)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="lale-int8-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models = [bench_model(m, work, args) for m in args.models]
    result = {
        "environment": collect_environment("cpu").__dict__,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "threads": args.threads,
        "rounds_b1": args.rounds_b1,
        "rounds_b8": args.rounds_b8,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "models": models,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "int8_cpu.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
