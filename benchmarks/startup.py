"""Start-up time of the ``lale`` command against ``python -c "import torch"``, on this machine.

Usage (from the repository root; a few minutes on a 2-core CPU)::

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --lale "old=/path/to/old/lale" --lale "new=lale"

Each ``--lale`` is ``[LABEL=]COMMAND`` (split like a shell would, so ``env -u PYTHONPATH lale``
works); giving two compares them in the same run. Measured in interleaved rounds (every case once
per round, in a rotating order) so that load changes on a shared machine hit all cases alike;
medians count:

- ``python -c "import torch"``: the reference every ratio is against;
- ``lale --help``, ``lale --version`` and ``lale COMMAND --help`` for every command;
- ``lale synth`` of 120 patches (256², one process, with its mosaic), as patches/s of the whole
  command, start-up included.

Writes ``benchmarks/results/startup_cpu.json`` (every time, with its context) and
``startup_cpu.md``. Targets: every ``--help`` under half of ``import torch``; ``synth`` at least
30 patches/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = [
    "models",
    "profile",
    "demo",
    "synth",
    "prepare",
    "train",
    "evaluate",
    "predict",
    "export",
]
SYNTH_SPLITS = {"train": 100, "val": 10, "test": 10}
PATCHES = sum(SYNTH_SPLITS.values())
HELP_TARGET = 0.5  # --help under this fraction of `import torch`
SYNTH_TARGET = 30.0  # patches/s, whole command


def _lale_arg(text: str) -> tuple[str, list[str]]:
    label, sep, command = text.partition("=")
    if not sep or " " in label or "/" in label:
        label, command = "lale", text
    return label, shlex.split(command)


def _output(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else f"failed ({done.returncode})"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(command: list[str], cwd: Path) -> tuple[float | None, float | None]:
    """Wall and CPU seconds of ``command`` (its processes); ``None`` when it fails."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return (seconds, cpu) if done.returncode == 0 else (None, None)


def _cases(python: str, lales: dict[str, list[str]]) -> dict[str, list[str]]:
    cases = {"import torch": [python, "-c", "import torch"]}
    for label, lale in lales.items():
        cases[f"{label}: lale --help"] = [*lale, "--help"]
        cases[f"{label}: lale --version"] = [*lale, "--version"]
        for command in COMMANDS:
            cases[f"{label}: lale {command} --help"] = [*lale, command, "--help"]
        counts = [f"--{split}={n}" for split, n in SYNTH_SPLITS.items()]
        cases[f"{label}: lale synth"] = [*lale, "synth", "OUT", *counts]
    return cases


Times = dict[str, list[float | None]]


def measure(cases: dict[str, list[str]], rounds: int) -> tuple[Times, Times]:
    """Wall and CPU times of every case once per round, the order rotated each round."""
    times: Times = {name: [] for name in cases}
    cpu_times: Times = {name: [] for name in cases}
    names = list(cases)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                command = cases[name]
                if "OUT" in command:
                    out = work / "synth"
                    shutil.rmtree(out, ignore_errors=True)
                    command = [str(out) if c == "OUT" else c for c in command]
                wall, cpu = _time(command, work)
                times[name].append(wall)
                cpu_times[name].append(cpu)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return times, cpu_times


def _median(values: list[float | None]) -> float | None:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if len(ok) == len(values) and ok else None


def summarize(times: Times, cpu_times: Times) -> list[dict[str, Any]]:
    torch_s = _median(times["import torch"])
    rows = []
    for name, values in times.items():
        median = _median(values)
        cpu = _median(cpu_times[name])
        row: dict[str, Any] = {"case": name, "median_s": median, "median_cpu_s": cpu}
        if median is not None and torch_s:
            row["vs_import_torch"] = median / torch_s
            if name.endswith("--help"):
                row["meets_target"] = median / torch_s < HELP_TARGET
        if name.endswith(": lale synth") and median is not None:
            row["patches_per_s"] = PATCHES / median
            row["meets_target"] = PATCHES / median >= SYNTH_TARGET
            if cpu:
                row["patches_per_cpu_s"] = PATCHES / cpu
        rows.append(row)
    return rows


def markdown(result: dict[str, Any]) -> str:
    ctx = result["context"]
    lines = [
        "# Start-up time of the lale command",
        "",
        "Generated by `python benchmarks/startup.py"
        + "".join(f' --lale "{label}=…"' for label in ctx["lale"])
        + f"` ({result['rounds']} interleaved rounds, medians).",
        "",
        f"- **machine**: {ctx['cpu']}, {ctx['cpus']} logical CPUs; {ctx['platform']}",
        f"- **versions**: python {ctx['python']}, torch {ctx['torch']}; "
        + ", ".join(f"{label}: {v}" for label, v in ctx["lale"].items()),
        f"- **date**: {ctx['date']}",
        f"- **load average** (1/5/15 min) before {ctx['load_before']}, after {ctx['load_after']}",
        "",
        f"Targets: every `--help` under {HELP_TARGET:.0%} of `import torch`; `lale synth` of "
        f"{PATCHES} patches (256², start-up included) at least {SYNTH_TARGET:.0f} patches/s.",
        "",
        "Wall times count; CPU seconds (user + system of the command's processes) show what the "
        "command costs when other jobs share the machine.",
        "",
        "| case | median s | × import torch | CPU s | patches/s | patches/CPU s | meets target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for row in result["rows"]:
        median = "failed" if row["median_s"] is None else f"{row['median_s']:.3f}"
        ratio = f"{row['vs_import_torch']:.2f}" if "vs_import_torch" in row else ""
        cpu = "" if row["median_cpu_s"] is None else f"{row['median_cpu_s']:.3f}"
        rate = f"{row['patches_per_s']:.1f}" if "patches_per_s" in row else ""
        cpu_rate = f"{row['patches_per_cpu_s']:.1f}" if "patches_per_cpu_s" in row else ""
        target = {True: "yes", False: "no"}.get(row.get("meets_target"), "")  # type: ignore[arg-type]
        cells = [f"`{row['case']}`", median, ratio, cpu, rate, cpu_rate, target]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lale",
        action="append",
        help="[LABEL=]COMMAND to run as lale (repeatable; default: lale next to this python)",
    )
    parser.add_argument("--python", default=sys.executable, help="python for `import torch`")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "startup_cpu")
    args = parser.parse_args(argv)
    default = str(Path(sys.executable).with_name("lale"))
    lales = dict(_lale_arg(text) for text in (args.lale or [default]))
    load_before = "/".join(f"{v:.2f}" for v in os.getloadavg())
    times, cpu_times = measure(_cases(args.python, lales), args.rounds)
    from lale.profiling.environment import cpu_name  # after timing: it imports torch

    context = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": _output([args.python, "-c", "import platform; print(platform.python_version())"]),
        "torch": _output([args.python, "-c", "import torch; print(torch.__version__)"]),
        "lale": {label: _output([*lale, "--version"]) for label, lale in lales.items()},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": "/".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    result = {
        "context": context,
        "rounds": args.rounds,
        "rows": summarize(times, cpu_times),
        "times": times,
        "cpu_times": cpu_times,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
