"""``lale demo``: a thin command over :mod:`lale.demo`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lale.cli._common import add_command, say_on, stdout

if TYPE_CHECKING:
    from lale.demo import DemoConfig

DEMO: DemoConfig | None = None
"""What ``lale demo`` runs; ``None``: :class:`lale.demo.DemoConfig`'s defaults."""


def demo_command(
    out: Annotated[Path, typer.Option(help="Output folder (the dataset goes in OUT/data).")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[
        int, typer.Option(min=1, help="Train this many seeds; report mean ± std.")
    ] = 1,
    minutes: Annotated[
        float | None,
        typer.Option(min=0.1, help="Wall-time cap of each training run [default: the demo's]."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The main job: synthetic data → lale_t and SegFormer-B0 on one budget → test, profile."""
    import torch

    from lale.cli.training import _quiet_lightning
    from lale.demo import DemoConfig, headline, run_demo
    from lale.output_paths import check_output_dir

    check_output_dir(out, create=False)
    _quiet_lightning()
    console = stdout()
    config = DEMO or DemoConfig()
    if minutes is not None:
        config = replace(config, minutes=minutes)
    console.print(
        f"[bold]lale demo[/] — {config.model} against {config.baseline} on synthetic land "
        f"cover, {config.steps} steps each, on this machine ({torch.get_num_threads()} threads)",
        soft_wrap=True,
    )
    results = run_demo(out, config, seeds=seeds, progress=progress, say=say_on(console))
    for line in headline(results):
        console.print(f"[bold]{escape(line)}[/]", soft_wrap=True)
    console.print(f"report: {escape(str(out / 'report.md'))}")


def register(app: typer.Typer) -> None:
    """Add ``lale demo`` to ``app``."""
    add_command(app, "demo", demo_command)
