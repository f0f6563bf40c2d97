"""Efficiency table: LALE variants against every registered baseline, measured in one run.

Usage (from the repository root, takes a while on CPU)::

    .venv/bin/python benchmarks/efficiency.py                 # 256², fp32, batch 8, all cores
    .venv/bin/python benchmarks/efficiency.py --list          # only print the model list
    .venv/bin/python benchmarks/efficiency.py --batch-size 16 --repeats 10
    .venv/bin/python benchmarks/efficiency.py --set frontier --edge   # the frontier table

``--set frontier`` profiles the frontier networks (``lale models --family frontier``) beside
lale_s1, lale_s2, lale_t and SegFormer-B0 and writes ``efficiency_frontier_<device>.*``.
``--edge`` adds, per model, the ONNX Runtime batch-1 latency on one thread (fp32 export by
``lale export``'s exporter, parity-checked; models run interleaved, median of the rounds) and
the size of its static int8 copy (``lale export --int8``'s defaults, calibrated on seeded
random crops: only the size is reported, which the calibration values do not change).

Writes ``benchmarks/results/efficiency_<device>.json`` (every number with its context),
``efficiency_<device>.md`` (table with ratios vs UPerNet, plus the "lale_t vs upernet" and
"lale_t vs its light rivals" summaries) and ``efficiency_<device>.png`` (GMACs vs throughput,
log axes; skipped with a message if matplotlib is not installed). Accuracy is not available yet,
so the plot shows cost against speed only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from lale.models.registry import get_entry, list_models
from lale.profiling import (
    ProfileRun,
    TimingConfig,
    profile_markdown,
    profile_models,
    profile_table,
    ratio_summary,
    write_json,
)
from lale.profiling.tables import format_number, format_ratio

RESULTS = Path(__file__).resolve().parent / "results"
LALE_VARIANTS = ("lale_s1", "lale_s2", "lale_t", "lale_s", "lale_b", "lale_l")
ENCODERS = ("resnet18", "efficientnet-b0")
#: The paper's smallest variant: the model every summary is about, unless --focus says otherwise.
FOCUS = "lale_s1"
#: Baselines in the same weight class as lale_t, always summarised against it when profiled.
LIGHT_RIVALS = ("efficientvit_b0", "mobilenetv4_small", "mit_b0", "segformer", "fastvit_t8")
#: Any other baseline up to this many parameters also counts as a light rival.
LIGHT_PARAMS = 5_000_000
#: The models ``--set frontier`` profiles besides the frontier family.
FRONTIER_COMPANIONS = ("lale_s1", "lale_s2", "lale_t", "segformer")
FAMILY_COLOURS = {"lale": "tab:red", "baseline": "tab:blue", "frontier": "tab:green"}


def smp_archs() -> list[str]:
    """Registered encoder/decoder baselines (UNet … SegFormer) whose encoder can be swapped."""
    from lale.models.baselines import ARCHITECTURES  # registry name -> SMP architecture

    return [n for n in list_models("baseline") if n in ARCHITECTURES]


def default_encoder(name: str) -> str | None:
    """The encoder a registered baseline uses when none is named."""
    encoder = get_entry(name).defaults.get("encoder_name")
    return None if encoder is None else str(encoder)


def default_models(encoders: Sequence[str] = ENCODERS) -> list[str]:
    """LALE variants, every registered baseline, then the SMP archs with each extra encoder.

    ``arch:encoder`` is skipped where ``encoder`` is already the arch's default (the plain name
    is that model).
    """
    names = [n for n in LALE_VARIANTS if n in list_models("lale")] + list_models("baseline")
    for arch in smp_archs():
        names += [f"{arch}:{enc}" for enc in encoders if enc != default_encoder(arch)]
    return names


def frontier_models() -> list[str]:
    """``--set frontier``: lale_s1, lale_s2, lale_t and SegFormer-B0, then the frontier family."""
    return [*FRONTIER_COMPANIONS, *list_models("frontier")]


def edge_measurements(
    models: Sequence[str], size: int, rounds: int, work: Path
) -> dict[str, dict[str, float | int | str]]:
    """Per model: 1-thread ONNX Runtime batch-1 latency (s) and fp32/static-int8 sizes (bytes).

    Every model is built with seeded random weights, saved as a run, exported and checked by
    lale's exporter; the sessions then run interleaved, ``rounds`` rounds, median per model.
    A model the exporter refuses is recorded with its one-line reason (``export_error``).
    """
    import numpy as np
    import onnxruntime as ort

    from lale.data.schema import ARAS400K
    from lale.inference.onnx.calibration import Calibration
    from lale.inference.onnx.export import export_onnx
    from lale.inference.onnx.io import ExportError
    from lale.inference.onnx.static import quantize_static_int8
    from lale.models import create_model
    from lale.run_config import RunConfig
    from lale.runs import save_run

    rng = np.random.default_rng(0)
    patches = rng.standard_normal((16, 3, size, size), dtype=np.float32)
    calibration = Calibration(patches, work / "random", "train", 16, size, 0)
    out: dict[str, dict[str, float | int | str]] = {}
    sessions = {}
    for name in models:
        torch.manual_seed(0)
        config = RunConfig.from_schema(name, ARAS400K)
        run = save_run(work / name, create_model(name, len(ARAS400K.names), 3), config)
        try:
            fp32 = export_onnx(
                run, run / "model.onnx", shapes=((1, size, size), (1, size - 31, size))
            )
        except ExportError as err:
            reason = str(err).split(". ")[0][:160]
            out[name] = {"export_error": reason}
            print(f"not exported {name}: {reason}")
            continue
        int8 = quantize_static_int8(fp32.path, calibration, run / "model.int8.onnx")
        out[name] = {"onnx_bytes": fp32.size_bytes, "static_int8_bytes": int8.size_bytes}
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        sessions[name] = ort.InferenceSession(str(fp32.path), options, ["CPUExecutionProvider"])
        mb = fp32.size_bytes / 1e6, int8.size_bytes / 1e6
        print(f"exported {name}: {mb[0]:.2f} MB fp32, {mb[1]:.2f} MB static int8")
    x = rng.standard_normal((1, 3, size, size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for s in sessions.values():
        s.run(None, {"image": x})
    for _ in range(rounds):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {"image": x})
            times[name].append(time.perf_counter() - t0)
    for name, t in times.items():
        out[name]["ort_latency_s"] = float(np.median(t))
    return out


def edge_markdown(
    run: ProfileRun, edge: dict[str, dict[str, float | int | str]], focus: str
) -> str:
    """The edge columns per model, with ratios against ``focus`` (> 1: ``focus`` better)."""
    if focus not in edge:
        return f"{focus} was not measured at the edge.\n"
    mine = edge[focus]
    lines = [
        "| model | family | params (M) | GMACs | ORT latency 1 thread (ms) | fp32 ONNX (MB) "
        f"| static int8 (MB) | {focus} ORT latency × | {focus} int8 size ÷ |",
        "| --- | --- |" + " ---: |" * 7,
    ]
    for name, e in edge.items():
        p = run.get(name)
        if "export_error" in e:
            reason = str(e["export_error"]).replace("|", "/")
            lines.append(
                f"| `{name}` | {p.family} | {format_number(p.params / 1e6)} | "
                f"{format_number(p.gmacs)} | not exported: {reason} | — | — | — | — |"
            )
            continue
        cells = [
            f"`{name}`",
            p.family,
            format_number(p.params / 1e6),
            format_number(p.gmacs),
            f"{float(e['ort_latency_s']) * 1e3:.1f}",
            f"{float(e['onnx_bytes']) / 1e6:.2f}",
            f"{float(e['static_int8_bytes']) / 1e6:.2f}",
            format_ratio(float(e["ort_latency_s"]) / float(mine["ort_latency_s"])),
            format_ratio(float(e["static_int8_bytes"]) / float(mine["static_int8_bytes"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def light_rivals(run: ProfileRun, model: str) -> list[str]:
    """Profiled baselines that count as light rivals of ``model`` (see :data:`LIGHT_RIVALS`)."""
    rivals = []
    for p in run.profiles:
        if p.family not in ("baseline", "frontier") or p.name == model:
            continue
        if p.name in LIGHT_RIVALS or p.params <= LIGHT_PARAMS:
            rivals.append(p.name)
    return rivals


def rivals_markdown(run: ProfileRun, model: str) -> str:
    """A markdown table of ``model`` against each light rival (ratios > 1: ``model`` better)."""
    rivals = light_rivals(run, model)
    if model not in {p.name for p in run.profiles} or not rivals:
        return f"{model} or its light rivals were not profiled.\n"
    headers = [
        "rival",
        "params (M)",
        "GMACs",
        "img/s",
        f"{model} params ÷",
        f"{model} storage ÷",
        f"{model} GMACs ÷",
        f"{model} throughput ×",
        f"{model} latency ×",
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * (len(headers) - 1),
    ]
    for rival in rivals:
        p = run.get(rival)
        r = run.ratios(rival)[model]
        cells = [
            f"`{rival}`",
            format_number(p.params / 1e6),
            format_number(p.gmacs),
            format_number(p.throughput),
            *(format_ratio(v) for v in (r.params, r.storage, r.gmacs, r.throughput, r.latency)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    sentences = "\n".join(f"- {ratio_summary(run, model, rival)}" for rival in rivals)
    return "\n".join(lines) + "\n\n" + sentences + "\n"


def paper_markdown(run: ProfileRun, model: str) -> str:
    """``model`` against every row of the paper's table that was profiled (ratios > 1: better)."""
    from lale.profiling.paper import load_paper_table

    rows = [row for row in load_paper_table().rows if row.model != model]
    profiled = {p.name for p in run.profiles}
    lines = [
        "| paper row | model | params (M) | GMACs | img/s | "
        f"{model} params ÷ | {model} GMACs ÷ | {model} throughput × | {model} latency × |",
        "| --- | --- |" + " ---: |" * 7,
    ]
    for row in rows:
        if row.model not in profiled or model not in profiled:
            continue
        p = run.get(row.model)
        r = run.ratios(row.model)[model]
        cells = [
            row.label,
            f"`{row.model}`",
            format_number(p.params / 1e6),
            format_number(p.gmacs),
            format_number(p.throughput),
            *(format_ratio(v) for v in (r.params, r.gmacs, r.throughput, r.latency)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(
    run: ProfileRun,
    command: str,
    focus: str = FOCUS,
    edge: dict[str, dict[str, float | int | str]] | None = None,
) -> str:
    """The full markdown report: context and table, then the ``focus`` summaries."""
    reference = run.reference or "the reference"
    light = ", ".join(f"`{n}`" for n in light_rivals(run, focus)) or "none profiled"
    edge_part = []
    if edge:
        edge_part = [
            f"## At the edge: ONNX Runtime, one thread, batch 1 ({run.config.size}²)",
            "",
            "Sessions run interleaved in one process, median of the rounds; int8 is "
            "`lale export --int8`'s static QDQ default.",
            "",
            edge_markdown(run, edge, focus),
        ]
    return "\n".join(
        [
            f"# Efficiency on {run.environment.device_type.upper()}",
            "",
            f"Generated by `{command}`. All models were measured in this one run; compare the",
            "ratio columns rather than absolute times (they drift between runs and machines).",
            "GMACs: `FlopCounterMode` ÷ 2 for one input, attention included.",
            "",
            profile_markdown(run),
            "Encoder/decoder baselines without `:encoder` use their registry default: "
            + ", ".join(f"`{a}`: {default_encoder(a)}" for a in smp_archs())
            + ".",
            "",
            f"## {focus} vs {reference}",
            "",
            ratio_summary(run, focus),
            "",
            f"## {focus} vs the paper's rows (each ratio against that row)",
            "",
            paper_markdown(run, focus),
            f"## {focus} vs its light rivals ({light})",
            "",
            rivals_markdown(run, focus),
            *edge_part,
        ]
    )


def plot(run: ProfileRun, path: Path) -> Path | None:
    """GMACs vs throughput scatter with point labels (log axes); ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
        return None
    fig, ax = plt.subplots(figsize=(10, 7))
    for family, color in FAMILY_COLOURS.items():
        points = [p for p in run.profiles if p.family == family]
        if not points:
            continue
        ax.scatter(
            [p.gmacs for p in points],
            [p.throughput for p in points],
            s=[20 + 4 * p.params / 1e6 for p in points],
            c=color,
            alpha=0.7,
            label=family,
        )
        for p in points:
            ax.annotate(
                p.name,
                (p.gmacs, p.throughput),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    cfg, env = run.config, run.environment
    ax.set_xlabel(f"GMACs (1×{cfg.in_channels}×{cfg.size}×{cfg.size})")
    ax.set_ylabel(f"throughput (images/s, batch {cfg.batch_size}, {cfg.dtype})")
    ax.set_title(f"{env.device}, {env.torch_threads} threads — marker area ∝ params")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--batch-size", type=int, default=8, help="throughput batch (default 8)")
    parser.add_argument("--size", type=int, default=256, help="input height = width")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--reference", default=None, help="default: upernet (frontier: lale_s1)")
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS))
    parser.add_argument("--models", nargs="+", default=None, help="default: see --list")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--focus", default=FOCUS, help="the model the summaries are about")
    parser.add_argument("--list", action="store_true", help="print the models and exit")
    parser.add_argument("--set", choices=("all", "frontier"), default="all", help="model set")
    parser.add_argument("--edge", action="store_true", help="add ORT latency and int8 size")
    parser.add_argument("--edge-rounds", type=int, default=20, help="ORT timed rounds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.models is not None:
        models = args.models
    elif args.set == "frontier":
        models = frontier_models()
    else:
        models = default_models(args.encoders)
    reference = args.reference or ("upernet" if args.set == "all" else FOCUS)
    if args.list:
        print("\n".join(models))
        return 0
    threads = args.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    torch.set_num_threads(threads)
    config = TimingConfig(
        size=args.size,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        channels_last=args.channels_last,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    print(f"profiling {len(models)} models ({threads} threads); reference {reference}")
    run = profile_models(models, config, reference=reference, on_error="skip")

    from rich.console import Console

    Console(width=220).print(profile_table(run))
    kind = "" if args.set == "all" else f"{args.set}_"
    stem = args.out_dir / f"efficiency_{kind}{run.environment.device_type}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/efficiency.py", *(argv or sys.argv[1:])])
    edge = None
    if args.edge:
        profiled = [p.name for p in run.profiles]
        with tempfile.TemporaryDirectory() as work:
            edge = edge_measurements(profiled, args.size, args.edge_rounds, Path(work))
    written = [write_json(run, stem.with_suffix(".json"))]
    if edge is not None:
        data = json.loads(written[0].read_text())
        data["edge"] = {"threads": 1, "batch": 1, "rounds": args.edge_rounds, "models": edge}
        written[0].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    md = stem.with_suffix(".md")
    md.write_text(report_markdown(run, command, args.focus, edge), encoding="utf-8")
    written.append(md)
    png = plot(run, stem.with_suffix(".png"))
    if png is not None:
        written.append(png)
    for name, err in run.failures.items():
        print(f"not profiled: {name}: {err}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
