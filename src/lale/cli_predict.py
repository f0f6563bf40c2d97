"""``lale predict``: whole-scene prediction of PNG, JPEG and GeoTIFF files with a trained run.

A thin command over :mod:`lale.inference.predict`. Each input is predicted on its own: a bad
input (unreadable, bands that cannot feed the model, nothing but no-data) prints a one-line error
naming the file and the others still complete; the command then exits with code 1 and a summary.
Bad options, an unusable run directory or device exit with code 2 before any input is read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn
from rich.table import Table

from lale.cli_common import fail
from lale.errors import DataError
from lale.progress import ProgressFn

if TYPE_CHECKING:
    from lale.inference.predict import SceneResult


EXIT_FAILED = 1
"""Some input could not be predicted."""
_BAR_MIN_WINDOWS = 16  # scenes with fewer windows finish too fast for a progress bar


@dataclass(frozen=True)
class Failure:
    """An input that could not be predicted, with a one-line reason naming it."""

    input: Path
    message: str


@dataclass
class BatchReport:
    """Outcome of :func:`predict_files`, in input order."""

    results: list[SceneResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def output_names(paths: Sequence[Path]) -> list[str]:
    """Base output name of each input: its stem, with ``-2``, ``-3`` … where a stem repeats."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        seen[p.stem] = seen.get(p.stem, 0) + 1
        names.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return names


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` → ``(4, 3, 2)``; ``None`` stays ``None``.

    Raises:
        ValueError: Not a comma-separated list of positive integers.
    """
    if text is None:
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ValueError(f"--bands expects 1-based band numbers like 4,3,2, got {text!r}") from None
    if not bands or min(bands) < 1:
        raise ValueError(f"--bands expects 1-based band numbers like 4,3,2, got {text!r}")
    return bands


def area_table(result: SceneResult) -> Table:
    """A rich table of one scene's classes: pixels, percent and km² where known."""
    areas = result.areas
    table = Table(title=escape(result.input.name), title_justify="left")
    for column in ("class", "pixels", "%") + (() if areas.km2 is None else ("km²",)):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in areas.rows():
        cells = [escape(row["class"]), f"{row['pixels']:,}", f"{row['percent']:.2f}"]
        table.add_row(*cells, *([f"{row['km2']:.4f}"] if "km2" in row else []))
    return table


def predict_files(
    paths: Sequence[Path],
    run_predict: Callable[[Path, str, ProgressFn | None], SceneResult],
    progress: Callable[[Path, int, int], None] | None = None,
    on_done: Callable[[SceneResult | Failure], None] | None = None,
) -> BatchReport:
    """Predict every input with ``run_predict(path, name, progress)``; failures are collected.

    Args:
        paths: Input files.
        run_predict: Predicts one input under an output base name.
        progress: Called with ``(input, windows done, windows in total)``.
        on_done: Called with each result or failure as soon as it is known.
    """
    from rasterio.errors import RasterioError

    report = BatchReport()
    for path, name in zip(paths, output_names(paths), strict=True):
        bar = None if progress is None else functools.partial(progress, path)
        outcome: SceneResult | Failure
        try:
            outcome = run_predict(path, name, bar)
            report.results.append(outcome)
        except DataError as err:
            outcome = Failure(path, str(err))
            report.failures.append(outcome)
        except (OSError, RasterioError) as err:  # e.g. the outputs could not be written
            outcome = Failure(path, f"{path}: {type(err).__name__}: {err}")
            report.failures.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return report


def predict_command(
    inputs: Annotated[list[Path], typer.Argument(help="PNG, JPEG or GeoTIFF files.")],
    run: Annotated[Path, typer.Option(help="Run directory (config.json, model.safetensors).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    tile: Annotated[int, typer.Option(min=16, help="Window side fed to the model.")] = 256,
    overlap: Annotated[
        int, typer.Option(min=0, help="Pixels shared by neighbouring windows.")
    ] = 64,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per model call.")] = 8,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    backend: Annotated[
        Literal["torch", "onnx"], typer.Option(help="torch (weights) or onnx (RUN/model.onnx).")
    ] = "torch",
    bands: Annotated[
        str | None, typer.Option(help="1-based input bands in model order, e.g. 4,3,2.")
    ] = None,
    blend: Annotated[
        Literal["uniform", "smooth"],
        typer.Option(help="Weighting of overlapping windows; smooth hides seams."),
    ] = "smooth",
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities",
            help="Also write NAME_confidence (uint8 max softmax × 255, 0 = no data).",
        ),
    ] = False,
    scale: Annotated[
        float | None, typer.Option(help="Override the run's scaling: (x + offset) / scale.")
    ] = None,
    offset: Annotated[float | None, typer.Option(help="Override the run's offset.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar for large scenes.")] = True,
) -> None:
    """Predict whole scenes: class map, colour preview, area table (and confidence) per input.

    GeoTIFFs give NAME_classes.tif (input CRS and transform, no-data 255, colour table),
    NAME_preview.png and NAME_areas.csv/.json with km² (geodesic for geographic CRSs); PNG/JPEG
    inputs give NAME_classes.png and pixel/percent tables. Sliding windows of TILE pixels
    overlapping by OVERLAP; memory is bounded by the batch, not the scene.
    """
    from lale.inference.predict import (
        BackendUnavailableError,
        PredictOptions,
        load_backend,
        predict_scene,
    )
    from lale.profiling.environment import DeviceUnavailableError, resolve_device
    from lale.runs import RunError

    try:
        options = PredictOptions(
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            blend=blend,
            bands=parse_bands(bands),
            scale=scale,
            offset=offset,
            probabilities=probabilities,
        )
        try:
            dev = resolve_device(device)
        except DeviceUnavailableError:
            raise
        except RuntimeError as err:  # torch's own message for a device type it does not know
            raise ValueError(f"unsupported device {device!r} ({err})") from None
        model, config = load_backend(run, backend, dev)
    except (ValueError, DeviceUnavailableError, BackendUnavailableError, RunError) as err:
        raise fail(str(err)) from None
    if options.bands is not None and len(options.bands) != config.in_channels:
        raise fail(
            f"--bands gives {len(options.bands)} bands; the model takes {config.in_channels}"
        )

    console = Console(width=None if Console().is_terminal else 200)
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=Console(stderr=True), transient=True, disable=not progress)
    tasks: dict[Path, TaskID] = {}

    def advance(path: Path, done: int, total: int) -> None:
        if total < _BAR_MIN_WINDOWS:
            return
        if path not in tasks:
            tasks[path] = bar.add_task(escape(path.name), total=total)
        bar.update(tasks[path], completed=done)

    errors = Console(stderr=True)

    def show(outcome: SceneResult | Failure) -> None:
        if isinstance(outcome, Failure):
            errors.print(f"[bold red]failed:[/] {escape(outcome.message)}", soft_wrap=True)
            return
        r = outcome
        rate = r.windows_run / r.seconds if r.seconds > 0 else 0.0
        files = ", ".join(escape(p.name) for p in r.outputs.values())
        console.print(area_table(r))
        console.print(
            f"{escape(str(r.input))}: {r.height}×{r.width} px, windows {r.windows_run} of "
            f"{r.windows} run ({rate:.1f}/s), {r.seconds:.1f} s → {files}",
            soft_wrap=True,
        )

    def run_one(path: Path, name: str, cb: ProgressFn | None) -> SceneResult:
        return predict_scene(path, out, model, config, options, name=name, progress=cb)

    with bar:
        report = predict_files(list(inputs), run_one, advance, show)
    done, failed = len(report.results), len(report.failures)
    if failed:
        names = ", ".join(escape(f.input.name) for f in report.failures)
        errors.print(f"[bold red]{failed} of {done + failed} inputs failed:[/] {names}")
        raise typer.Exit(EXIT_FAILED)
    console.print(f"predicted {done} input{'s' if done != 1 else ''} into {escape(str(out))}")


def register(app: typer.Typer) -> None:
    """Add ``lale predict`` to ``app``."""
    app.command("predict")(predict_command)
