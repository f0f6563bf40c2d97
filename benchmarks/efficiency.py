"""Efficiency table: LALE variants against every registered baseline, measured in one run.

Usage (from the repository root, takes a while on CPU)::

    .venv/bin/python benchmarks/efficiency.py                 # 256², fp32, batch 8, all cores
    .venv/bin/python benchmarks/efficiency.py --list          # only print the model list
    .venv/bin/python benchmarks/efficiency.py --batch-size 16 --repeats 10

Writes ``benchmarks/results/efficiency_<device>.json`` (every number with its context),
``efficiency_<device>.md`` (table with ratios vs UPerNet, plus the "lale_t vs upernet" and
"lale_t vs its light rivals" summaries) and ``efficiency_<device>.png`` (GMACs vs throughput,
log axes; skipped with a message if matplotlib is not installed). Accuracy is not available yet,
so the plot shows cost against speed only.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def light_rivals(run: ProfileRun, model: str) -> list[str]:
    """Profiled baselines that count as light rivals of ``model`` (see :data:`LIGHT_RIVALS`)."""
    rivals = []
    for p in run.profiles:
        if p.family != "baseline" or p.name == model:
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


def report_markdown(run: ProfileRun, command: str, focus: str = FOCUS) -> str:
    """The full markdown report: context and table, then the two ``focus`` summaries."""
    reference = run.reference or "the reference"
    light = ", ".join(f"`{n}`" for n in light_rivals(run, focus)) or "none profiled"
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
    for family, color in (("lale", "tab:red"), ("baseline", "tab:blue")):
        points = [p for p in run.profiles if p.family == family]
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
    parser.add_argument("--reference", default="upernet")
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS))
    parser.add_argument("--models", nargs="+", default=None, help="default: see --list")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--focus", default=FOCUS, help="the model the summaries are about")
    parser.add_argument("--list", action="store_true", help="print the models and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    models = args.models if args.models is not None else default_models(args.encoders)
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
    print(f"profiling {len(models)} models ({threads} threads); reference {args.reference}")
    run = profile_models(models, config, reference=args.reference, on_error="skip")

    from rich.console import Console

    Console(width=220).print(profile_table(run))
    stem = args.out_dir / f"efficiency_{run.environment.device_type}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/efficiency.py", *(argv or sys.argv[1:])])
    written = [write_json(run, stem.with_suffix(".json"))]
    md = stem.with_suffix(".md")
    md.write_text(report_markdown(run, command, args.focus), encoding="utf-8")
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
