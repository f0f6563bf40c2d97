"""The ``lale`` command line: one typer app whose commands stay thin and call the library.

Commands: ``lale models`` (registered models with params and GMACs), ``lale profile`` (efficiency
table with ratios against a reference), ``lale demo`` and ``lale --version``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import torch
import typer
from rich.console import Console
from rich.markup import escape

from lale.cli_common import EXIT_FAILURE, fail, stdout
from lale.cli_export import register as register_export_command
from lale.cli_predict import register as register_predict_command
from lale.cli_training import register as register_training_commands
from lale.demo import DemoConfig
from lale.models.registry import UnknownModelError, list_models
from lale.profiling import (
    DEFAULT_REFERENCE,
    DeviceUnavailableError,
    ModelSummary,
    ProfileRun,
    ProfilingError,
    TimingConfig,
    lale_version,
    models_table,
    profile_models,
    profile_table,
    summarize_models,
    write_json,
)

app = typer.Typer(
    name="lale",
    help="LALE: lightweight land-cover segmentation — models, efficiency profiling and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


DEMO = DemoConfig()  # lale.demo.DemoConfig: what `lale demo` runs


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lale {lale_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """LALE: lightweight land-cover segmentation — models, efficiency profiling and more."""


def _summaries(size: int, family: Literal["lale", "baseline"] | None = None) -> list[ModelSummary]:
    try:
        names = list_models(family)
    except ImportError as err:
        raise fail(f"could not load the model registry: {err}", EXIT_FAILURE) from None
    return summarize_models(names, size, progress=True)


@app.command("models")
def models_command(
    size: Annotated[int, typer.Option(min=32, help="Input height = width for GMACs.")] = 256,
    family: Annotated[
        Literal["lale", "baseline"] | None, typer.Option(help="Only this family.")
    ] = None,
) -> None:
    """List every registered model with its parameters and GMACs (one 1×3×size² input)."""
    stdout().print(models_table(_summaries(size, family)))


def _profile(
    names: list[str],
    config: TimingConfig,
    reference: str | None,
    *,
    skip_errors: bool = False,
) -> ProfileRun:
    try:
        return profile_models(
            names, config, reference=reference, on_error="skip" if skip_errors else "raise"
        )
    except (UnknownModelError, DeviceUnavailableError) as err:
        raise fail(str(err)) from None
    except ProfilingError as err:
        raise fail(str(err), EXIT_FAILURE) from None
    except ImportError as err:
        raise fail(f"could not load the model registry: {err}", EXIT_FAILURE) from None
    except ValueError as err:  # e.g. "arch:encoder" on a model without encoders
        raise fail(str(err)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


@app.command("profile")
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
        str, typer.Option(help="Model the ratios are against ('none' for no ratios).")
    ] = DEFAULT_REFERENCE,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to this JSON file.")
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
    ref = None if reference.lower() == "none" else reference
    run = _profile(models, config, ref, skip_errors=skip_errors)
    out = stdout()
    out.print(profile_table(run))
    if json_path is not None:
        out.print(f"wrote {escape(str(write_json(run, json_path)))}")


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Run directory (the dataset goes in OUT/data).")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[
        int, typer.Option(min=1, help="Train this many seeds; report mean ± std.")
    ] = 1,
    minutes: Annotated[
        float, typer.Option(min=0.1, help="Wall-time cap of each training run.")
    ] = DEMO.minutes,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The main job: synthetic data → train lale_t → test → profile vs UPerNet and SegFormer."""
    from lale.cli_training import _quiet_lightning
    from lale.demo import headline, run_demo
    from lale.training.run import TrainingError

    _quiet_lightning()
    console = stdout()
    config = replace(DEMO, minutes=minutes)
    console.print(
        f"[bold]lale demo[/] — {config.model} on synthetic land cover, then against "
        f"{', '.join(config.rivals)} on this machine ({torch.get_num_threads()} threads)",
        soft_wrap=True,
    )
    try:
        result = run_demo(out, config, seeds=seeds, progress=progress, say=console.print)
    except TrainingError as err:
        raise fail(str(err), EXIT_FAILURE) from None
    if result.profile is not None:
        console.print(profile_table(result.profile))
    for line in headline(result, config):
        console.print(f"[bold]{escape(line)}[/]", soft_wrap=True)
    console.print(f"report: {escape(str(out / 'report.md'))}")


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Argument(help="Dataset root to write ({split}/{images,masks}).")],
    train: Annotated[int, typer.Option(min=0, help="Training patches.")] = 800,
    val: Annotated[int, typer.Option(min=0, help="Validation patches.")] = 100,
    test: Annotated[int, typer.Option(min=0, help="Test patches.")] = 100,
    size: Annotated[int, typer.Option(min=32, help="Patch side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(min=0, help="Dataset seed (same seed, same bytes).")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes to generate with.")] = 1,
    mosaic: Annotated[
        bool, typer.Option(help="Also write OUT/samples.png: 8 training patches and masks.")
    ] = True,
) -> None:
    """Write procedurally generated Sentinel-2-like land-cover patches in the ARAS400k layout."""
    from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from lale.data.synthetic import generate_scene, patch_rng, save_mosaic, write_dataset

    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("generating patches", total=train + val + test)
        summary = write_dataset(
            out,
            train=train,
            val=val,
            test=test,
            size=size,
            seed=seed,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    table = Table(title=f"synthetic dataset {escape(str(out))} (seed {seed}, {size}²)")
    table.add_column("class")
    for split in summary.splits:
        table.add_column(f"{split} ({summary.splits[split].count})", justify="right")
    for k, name in enumerate(summary.class_names):
        table.add_row(name, *(f"{s.fractions[k]:.1%}" for s in summary.splits.values()))
    console = stdout()
    console.print(table)
    if mosaic and train > 0:
        samples = [generate_scene(patch_rng(seed, "train", i), size) for i in range(min(8, train))]
        save_mosaic(Path(out) / "samples.png", samples)
        console.print(f"wrote {escape(str(Path(out) / 'samples.png'))}")


@app.command("prepare")
def prepare_command(
    out: Annotated[Path, typer.Argument(help="Dataset root to write (new or empty).")],
    imagery: Annotated[
        list[Path], typer.Option(help="Sentinel-2 GeoTIFF tile, or a folder of them; repeatable.")
    ],
    labels: Annotated[
        list[Path], typer.Option(help="ESA WorldCover GeoTIFF, or a folder of them; repeatable.")
    ],
    patch: Annotated[int, typer.Option(min=1, help="Patch side in pixels.")] = 256,
    bands: Annotated[
        str,
        typer.Option(
            help="Band numbers in output order (4,3,2 = B04,B03,B02 of a B01… stack); "
            "three → RGB PNG, else GeoTIFF."
        ),
    ] = "4,3,2",
    split: Annotated[str, typer.Option(help="train,val,test fractions (sum 1).")] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the block shuffle.")] = 0,
    block: Annotated[int, typer.Option(min=1, help="Split blocks are BLOCK×BLOCK patches.")] = 8,
    offset: Annotated[
        str,
        typer.Option(help="DN offset before /10000: auto (BOA_ADD_OFFSET tag, else 0) or an int."),
    ] = "auto",
) -> None:
    """Cut Sentinel-2 GeoTIFF tiles and ESA WorldCover maps into ARAS400k-layout patches.

    Labels are warped (nearest) onto each patch's grid; bands are scaled to 8 bits by ESA's
    true-colour rule (reflectance 0–0.2 → 0–255). Whole BLOCK×BLOCK groups of patches go to one
    split. Writes OUT/{train,val,test}/{images,masks}/ and OUT/prepare.json.
    """
    try:
        from lale.data import prepare as prep
    except ImportError as err:
        raise fail(
            f"lale prepare needs rasterio ({err}): pip install rasterio", EXIT_FAILURE
        ) from None
    from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    try:
        options = prep.PrepareOptions(
            patch=patch,
            bands=prep.parse_bands(bands),
            split=prep.parse_split(split),
            seed=seed,
            block=block,
            offset=prep.parse_offset(offset),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("preparing patches", total=None)
            summary = prep.prepare_dataset(
                imagery,
                labels,
                out,
                options,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (prep.DataError, prep.PrepareError) as err:
        raise fail(str(err)) from None
    console = stdout()
    console.print(prep.summary_table(summary))
    console.print(prep.class_table(summary))
    console.print(f"wrote {escape(str(summary.json_path))}")


register_training_commands(app)
register_export_command(app)
register_predict_command(app)


if __name__ == "__main__":
    app()
