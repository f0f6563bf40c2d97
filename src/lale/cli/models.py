"""``lale models``, ``lale profile``, ``lale paper``: thin commands over :mod:`lale.profiling`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, stdout
from lale.errors import UnavailableError


def _registry_names(family: Literal["lale", "baseline", "frontier"] | None = None) -> list[str]:
    from lale.models.registry import list_models

    try:
        return list_models(family)
    except ImportError as err:
        raise UnavailableError(f"could not load the model registry: {err}") from None


def models_command(
    size: Annotated[int, typer.Option(min=32, help="Input height = width for GMACs.")] = 256,
    family: Annotated[
        Literal["lale", "baseline", "frontier"] | None, typer.Option(help="Only this family [all].")
    ] = None,
) -> None:
    """List every registered model with its parameters and GMACs (one 1×3×size² input)."""
    from lale.profiling import models_table, summarize_models

    summaries = summarize_models(_registry_names(family), size, progress=True)
    stdout().print(models_table(summaries))


def profile_command(
    models: Annotated[
        list[str], typer.Argument(help="Registered model names; baselines accept arch:encoder.")
    ],
    size: Annotated[int, typer.Option(min=32, help="Input height = width in pixels.")] = 256,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch for throughput.")] = 16,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    dtype: Annotated[
        Literal["fp32", "bf16"], typer.Option(help="fp32, or bf16 autocast.")
    ] = "fp32",
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Use channels-last memory format.")
    ] = False,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Model the ratios are against ('none' for no ratios) [default: upernet]."
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the results to this JSON file [not written]."),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes (median reported).")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up passes.")] = 3,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice).")
    ] = None,
    in_channels: Annotated[int, typer.Option(min=1, help="Input bands.")] = 3,
    latency: Annotated[bool, typer.Option(help="Also measure batch-1 latency.")] = True,
    skip_errors: Annotated[
        bool, typer.Option("--skip-errors", help="Report models that fail and go on.")
    ] = False,
) -> None:
    """Measure params, storage, GMACs, throughput and latency, with ratios vs a reference.

    All models (and the reference, added if not listed) are measured in this one run.
    """
    import torch

    from lale.profiling import (
        DEFAULT_REFERENCE,
        TimingConfig,
        profile_models,
        profile_table,
        write_json,
    )

    if threads is not None:
        torch.set_num_threads(threads)
    config = TimingConfig(
        size=size,
        in_channels=in_channels,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        channels_last=channels_last,
        warmup=warmup,
        repeats=repeats,
        latency=latency,
    )
    reference = DEFAULT_REFERENCE if reference is None else reference
    ref = None if reference.lower() == "none" else reference
    try:
        run = profile_models(
            models, config, reference=ref, on_error="skip" if skip_errors else "raise"
        )
    except ImportError as err:
        raise UnavailableError(f"could not load the model registry: {err}") from None
    out = stdout()
    out.print(profile_table(run))
    if json_path is not None:
        out.print(f"wrote {escape(str(write_json(run, json_path)))}")


def paper_command(
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the comparison to this JSON file [not written]."),
    ] = None,
) -> None:
    """Build every row of the paper's table by name: our params and GMACs beside the published.

    Ratios against upernet are computed twice, from our counts and from the published
    numbers; the page's headline claims are shown beside them. A second table, the frontier,
    counts the light networks LALE is weighed against at their own papers' input sizes.
    """
    from lale.atomic import write_json_atomic
    from lale.profiling.frontier import compare_frontier, frontier_table
    from lale.profiling.paper import compare_to_paper, paper_tables

    try:
        comparison = compare_to_paper()
        frontier = compare_frontier()
    except ImportError as err:
        raise UnavailableError(f"could not load the model registry: {err}") from None
    out = stdout()
    for table in paper_tables(comparison):
        out.print(table)
    out.print(frontier_table(frontier))
    for count in frontier.rows:
        if count.row.gmacs_note:
            out.print(f"{escape(count.row.label)}: {escape(count.row.gmacs_note)}")
    if json_path is not None:
        data = {**comparison.to_dict(), "frontier": frontier.to_dict()}
        write_json_atomic(json_path, data)
        out.print(f"wrote {escape(str(json_path))}")


def register(app: typer.Typer) -> None:
    """Add ``lale models``, ``lale profile`` and ``lale paper`` to ``app``."""
    add_command(app, "models", models_command)
    add_command(app, "profile", profile_command)
    add_command(app, "paper", paper_command)
