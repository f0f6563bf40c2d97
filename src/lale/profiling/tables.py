"""Presentation of profiles: rich tables for the terminal and markdown for recorded results."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from lale.profiling.environment import EnvironmentInfo
from lale.profiling.report import ProfileRun, Ratios
from lale.profiling.summary import ModelSummary
from lale.profiling.timing import TimingConfig

__all__ = [
    "describe_run",
    "format_number",
    "format_ratio",
    "models_table",
    "profile_markdown",
    "profile_rows",
    "profile_table",
    "ratio_summary",
]

_MISSING = "—"

#: Column headers of a profile, in order; the last five are ratios against the reference.
PROFILE_COLUMNS = (
    "model",
    "family",
    "params (M)",
    "storage (MB)",
    "GMACs",
    "img/s",
    "latency (ms)",
    "params ÷",
    "storage ÷",
    "GMACs ÷",
    "throughput ×",
    "latency ×",
)


def format_number(value: float | None) -> str:
    """Three significant digits (whole numbers from 100 up); ``—`` when missing."""
    if value is None:
        return _MISSING
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.2g}"


def format_ratio(value: float | None) -> str:
    """``4.5×``-style text for a ratio (``—`` when undefined)."""
    return _MISSING if value is None else f"{value:.2f}×" if value >= 0.1 else f"{value:.2g}×"


def profile_rows(run: ProfileRun) -> list[list[str]]:
    """One row of formatted cells per profiled model, matching :data:`PROFILE_COLUMNS`."""
    ratios = run.ratios()
    rows = []
    for p in run.profiles:
        r: Ratios | None = ratios.get(p.name)
        rows.append(
            [
                p.name,
                p.family,
                format_number(p.params / 1e6),
                format_number(p.storage_bytes / 1e6),
                format_number(p.gmacs),
                format_number(p.throughput),
                format_number(p.latency_ms),
                format_ratio(r.params if r else None),
                format_ratio(r.storage if r else None),
                format_ratio(r.gmacs if r else None),
                format_ratio(r.throughput if r else None),
                format_ratio(r.latency if r else None),
            ]
        )
    return rows


def ratio_summary(run: ProfileRun, name: str, reference: str | None = None) -> str:
    """One sentence comparing ``name`` with ``reference`` (default: the run's reference).

    E.g. ``"lale_t vs upernet: 4.50× fewer params, 7.00× less storage, 17.00× fewer GMACs,
    1.80× higher throughput, 1.50× faster at batch 1"``.
    """
    ref = reference if reference is not None else run.reference
    r = run.ratios(ref).get(name)
    if r is None:
        return f"{name} vs {ref}: not available (one of them was not profiled)"
    parts = [
        f"{format_ratio(r.params)} fewer params",
        f"{format_ratio(r.storage)} less storage",
        f"{format_ratio(r.gmacs)} fewer GMACs",
        f"{format_ratio(r.throughput)} higher throughput",
    ]
    if r.latency is not None:
        parts.append(f"{format_ratio(r.latency)} faster at batch 1")
    return f"{name} vs {ref}: " + ", ".join(parts)


def describe_run(environment: EnvironmentInfo, config: TimingConfig) -> str:
    """One line of context: device, dtype, batch, size, threads, versions, date."""
    v = environment.versions
    libs = ", ".join(
        f"{k} {v[k]}" for k in ("python", "torch", "lale", "smp", "timm", "numpy") if v.get(k)
    )
    layout = ", channels_last" if config.channels_last else ""
    return (
        f"{environment.device} ({environment.device_type}), {config.dtype}{layout}, "
        f"batch {config.batch_size}, {config.size}×{config.size}×{config.in_channels}, "
        f"{environment.torch_threads} threads, {libs}; {environment.date}"
    )


def profile_table(run: ProfileRun) -> Table:
    """A rich table of the run with ratio columns against the run's reference."""
    ref = run.reference or "no reference"
    table = Table(
        title=f"Efficiency @ {run.config.size}², batch {run.config.batch_size} "
        f"(ratios vs {ref}; > 1 = better)",
        caption=escape(describe_run(run.environment, run.config)),
    )
    for i, header in enumerate(PROFILE_COLUMNS):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for p, row in zip(run.profiles, profile_rows(run), strict=True):
        style = "bold" if p.name == run.reference else ("cyan" if p.family == "lale" else None)
        table.add_row(*(escape(cell) for cell in row), style=style)
    for name, err in run.failures.items():
        table.add_row(escape(name), "", *([_MISSING] * 10), style="red")
        table.caption = f"{table.caption}\nfailed: {escape(name)}: {escape(err)}"
    return table


def models_table(summaries: Sequence[ModelSummary]) -> Table:
    """A rich table of registered models with parameters and GMACs."""
    size = summaries[0].size if summaries else 256
    table = Table(title=f"Registered models (GMACs for one 1×3×{size}×{size} input)")
    table.add_column("name", no_wrap=True)
    table.add_column("family")
    table.add_column("description")
    table.add_column("params (M)", justify="right")
    table.add_column(f"GMACs @{size}²", justify="right")
    for s in summaries:
        params = None if s.params is None else s.params / 1e6
        table.add_row(
            escape(s.name),
            s.family,
            escape(s.description)
            if s.error is None
            else f"{escape(s.description)} [red]({escape(s.error)})[/]",
            format_number(params),
            format_number(s.gmacs),
            style="cyan" if s.family == "lale" else None,
        )
    return table


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---" if i < 2 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def profile_markdown(run: ProfileRun) -> str:
    """The run as markdown: a context list, then the table with ratio columns."""
    env, cfg = run.environment, run.config
    versions = ", ".join(f"{k} {v}" for k, v in env.versions.items() if v)
    header = [
        f"- **device**: {env.device} ({env.device_type}); CPU {env.cpu}, "
        f"{env.cpu_count} logical CPUs; {env.platform}",
        f"- **dtype**: {cfg.dtype}{' (autocast)' if cfg.dtype == 'bf16' else ''}, "
        f"memory format {'channels_last' if cfg.channels_last else 'contiguous'}",
        f"- **input**: {cfg.in_channels}×{cfg.size}×{cfg.size}; throughput at batch "
        f"{cfg.batch_size}, latency at batch 1; warm-up {cfg.warmup}, median of {cfg.repeats}",
        f"- **threads**: {env.torch_threads}",
        f"- **versions**: {versions}",
        f"- **date**: {env.date}",
        f"- **ratios** vs `{run.reference}`; every ratio > 1 means better than the reference "
        "(params, storage, GMACs, latency: reference ÷ model; throughput: model ÷ reference)",
    ]
    parts = ["\n".join(header), _markdown_table(PROFILE_COLUMNS, profile_rows(run))]
    if run.failures:
        failed = "\n".join(f"- `{n}`: {e}" for n, e in run.failures.items())
        parts.append("Not profiled:\n\n" + failed)
    return "\n\n".join(parts) + "\n"
