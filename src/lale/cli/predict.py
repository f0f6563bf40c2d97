"""``lale predict``: whole-scene prediction of PNG, JPEG and GeoTIFF files with a trained run.

The model comes from a run directory (``--run``: PyTorch, or its exported ``model.onnx`` with
``--backend onnx``) or from an exported file alone (``--model FILE.onnx``: onnxruntime, no
PyTorch needed; ``pip install 'lale[edge]'``).

A thin command over :mod:`lale.inference.predict` and :mod:`lale.inference.batch`. Each input is
predicted on its own: a bad input prints a one-line error naming the file and the others still
complete; the command then exits with code 1 and a summary. Bad options, an unusable run
directory or device exit before any input is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from lale.cli._common import EXIT_FAILURE, add_command, fail, progress_bar, stderr, stdout

if TYPE_CHECKING:
    from rich.progress import TaskID
    from rich.table import Table

    from lale.inference.inputs import Source
    from lale.inference.predict import SceneResult
    from lale.progress import ProgressFn

_BAR_MIN_WINDOWS = 16  # scenes with fewer windows finish too fast for a progress bar


def _listing(paths: Sequence[Source], most: int = 20) -> str:
    """``paths`` joined by commas; past ``most``, a count of the rest."""
    shown = ", ".join(escape(str(p)) for p in paths[:most])
    return shown + (f" … and {len(paths) - most} more" if len(paths) > most else "")


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise fail(f"--bbox {text!r}: give four numbers, WEST,SOUTH,EAST,NORTH") from None
    return (w, s, e, n)


def _checked_crs(text: str) -> str:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        CRS.from_user_input(text)
    except CRSError:
        raise fail(f"--bbox-crs {text!r} is not a CRS rasterio knows (e.g. EPSG:4326)") from None
    return text


def area_table(result: SceneResult) -> Table:
    """A rich table of one scene's classes: pixels, percent and km² where known."""
    from rich.table import Table

    areas = result.areas
    table = Table(title=escape(result.input.name), title_justify="left")
    for column in ("class", "pixels", "%") + (() if areas.km2 is None else ("km²",)):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in areas.rows():
        cells = [escape(row["class"]), f"{row['pixels']:,}", f"{row['percent']:.2f}"]
        table.add_row(*cells, *([f"{row['km2']:.4f}"] if "km2" in row else []))
    return table


def predict_command(
    out: Annotated[Path, typer.Option(help="Output folder.")],
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="PNG, JPEG or GeoTIFF files, folders of them, quoted glob patterns, or raster "
            "URLs (https://, s3://, gs://, az://, /vsi…) read by windows [none: give --stac]."
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            help="Run directory (config.json, model.safetensors) [give --run or --model]."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Exported ONNX file (lale export), used alone: no run directory, no PyTorch "
            "[give --run or --model].",
        ),
    ] = None,
    tile: Annotated[int, typer.Option(min=16, help="Window side fed to the model.")] = 256,
    overlap: Annotated[
        int, typer.Option(min=0, help="Pixels shared by neighbouring windows.")
    ] = 64,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per model call.")] = 8,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    backend: Annotated[
        Literal["torch", "onnx"] | None,
        typer.Option(help="With --run: torch (weights) or onnx (RUN/model.onnx) [torch]."),
    ] = None,
    bands: Annotated[
        str | None,
        typer.Option(
            help="1-based input bands in model order, e.g. 4,3,2 [the run's bands for inputs "
            "with as many bands as its training images, else 1..N for an N-band model]."
        ),
    ] = None,
    blend: Annotated[
        Literal["uniform", "smooth"],
        typer.Option(help="Weighting of overlapping windows; smooth hides seams."),
    ] = "smooth",
    confidence: Annotated[
        bool,
        typer.Option(
            "--confidence",
            help="Also write NAME_confidence (uint8 max softmax × 255, 0 = no data).",
        ),
    ] = False,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities",
            help="Also write NAME_probabilities.tif (uint8 softmax × 255, a band per class) "
            "and NAME_confidence.",
        ),
    ] = False,
    vector: Annotated[
        Literal["gpkg", "geojson"] | None,
        typer.Option(
            help="Also write the class map's polygons: NAME_classes.gpkg/.geojson [no polygons]."
        ),
    ] = None,
    min_area: Annotated[
        str | None,
        typer.Option(
            help="With --vector: merge regions smaller than this first, e.g. 500m2 or 4px [none]."
        ),
    ] = None,
    simplify: Annotated[
        float | None,
        typer.Option(help="With --vector: simplification tolerance in map units [none]."),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(help="Override the run's scaling: (x + offset) / scale [the run's]."),
    ] = None,
    offset: Annotated[
        float | None, typer.Option(help="Override the run's offset [the run's].")
    ] = None,
    stac: Annotated[
        list[str] | None,
        typer.Option(
            help="A STAC Item, ItemCollection or saved search (file or URL); each item is an "
            "input named by its id. Repeatable [none]."
        ),
    ] = None,
    assets: Annotated[
        str | None,
        typer.Option(
            help="With --stac: bands in model order by asset key or eo:bands common name, "
            "e.g. red,green,blue [give --assets or --asset]."
        ),
    ] = None,
    asset: Annotated[
        str | None,
        typer.Option(
            help="With --stac: one asset taken with all its bands, e.g. visual "
            "[give --assets or --asset]."
        ),
    ] = None,
    bbox: Annotated[
        str | None,
        typer.Option(
            help="Predict only this box of a georeferenced input, WEST,SOUTH,EAST,NORTH, read "
            "by windows [the whole input]."
        ),
    ] = None,
    bbox_crs: Annotated[
        str, typer.Option(help="CRS of --bbox, e.g. EPSG:32633 [longitude/latitude].")
    ] = "EPSG:4326",
    progress: Annotated[bool, typer.Option(help="Show a progress bar for large scenes.")] = True,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Look for images in subfolders too.")
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="Skip inputs whose outputs are all in --out already."),
    ] = False,
) -> None:
    """Predict whole scenes: class map, colour preview, area table (and more) per input.

    The model is a run directory (--run) or an exported ONNX file alone (--model FILE.onnx,
    which needs onnxruntime but not PyTorch).

    GeoTIFFs give NAME_classes.tif (a Cloud-Optimized GeoTIFF: input CRS and transform, no-data
    255, colour table), NAME_preview.png and NAME_areas.csv/.json with km² (geodesic for
    geographic CRSs); --vector adds the polygons of every connected region. PNG/JPEG inputs give
    NAME_classes.png and pixel/percent tables (--vector needs a CRS and is refused for them).
    Sliding windows of TILE pixels overlapping by OVERLAP; memory is bounded by the batch, not
    the scene.
    """
    from lale.data.io.bands import parse_bands
    from lale.inference.batch import Failure, output_names, predict_files
    from lale.inference.inputs import expand_inputs
    from lale.inference.options import PredictOptions
    from lale.inference.predict import predict_scene
    from lale.inference.scene_outputs import planned_outputs
    from lale.inference.stac import read_stac
    from lale.inference.vector_options import VectorOptions, parse_min_area
    from lale.output_paths import check_output_dir

    if vector is None and (min_area is not None or simplify is not None):
        raise fail("--min-area and --simplify need --vector")
    vector_options = None
    if vector is not None:
        area, unit = parse_min_area(min_area)
        vector_options = VectorOptions(vector, area, unit, simplify)
    options = PredictOptions(
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        blend=blend,
        bands=parse_bands(bands),
        scale=scale,
        offset=offset,
        confidence=confidence,
        probabilities=probabilities,
        vector=vector_options,
        bbox=_parse_bbox(bbox),
        bbox_crs=_checked_crs(bbox_crs),
    )
    if (run is None) == (model is None):
        raise fail("give the model as --run RUN or as --model FILE.onnx (one of them)")
    if model is not None and backend == "torch":
        raise fail("--model runs the ONNX file with onnxruntime; --backend torch needs --run")
    check_output_dir(out)
    if model is not None:
        from lale.inference.predict import load_model_file

        net, config = load_model_file(model, device)
        side = getattr(net, "fixed_side", None)
        if side is not None and tile > side:
            raise fail(
                f"--tile {tile}: {model} takes windows of at most {side} px; use --tile {side}"
            )
    else:
        from lale.inference.predict import load_backend
        from lale.profiling.environment import resolve_device

        assert run is not None
        net, config = load_backend(run, backend or "torch", resolve_device(device))
    if options.bands is not None and len(options.bands) != config.in_channels:
        raise fail(
            f"--bands gives {len(options.bands)} bands; the model takes {config.in_channels}"
        )
    if not inputs and not stac:
        raise fail("give input files, URLs or --stac ITEM")
    if not stac and (assets is not None or asset is not None):
        raise fail("--assets and --asset pick the bands of --stac items")
    paths: list[Source] = list(expand_inputs(inputs or [], recursive))
    for href in stac or []:
        names = None if assets is None else [a.strip() for a in assets.split(",") if a.strip()]
        paths += read_stac(href, names, asset)
    base_names = dict(zip(paths, output_names(paths), strict=True))
    console = stdout()
    skipped = []
    if skip_existing:
        for path, name in base_names.items():
            planned = planned_outputs(
                path,
                out,
                name,
                options.writes_confidence,
                probabilities=probabilities,
                vector=vector_options,
            )
            if all(p.is_file() for p in planned.values()):
                skipped.append(path)
    todo = [p for p in paths if p not in skipped]
    count = f"{len(todo)} input{'s' if len(todo) != 1 else ''}"
    console.print(f"{count}: {_listing(todo)}", soft_wrap=True)
    if skipped:
        console.print(f"skipped, outputs complete: {_listing(skipped)}", soft_wrap=True)
    bar = progress_bar(disable=not progress)
    tasks: dict[Source, TaskID] = {}

    def advance(path: Source, done: int, total: int) -> None:
        if total < _BAR_MIN_WINDOWS:
            return
        if path not in tasks:
            tasks[path] = bar.add_task(escape(path.name), total=total)
        bar.update(tasks[path], completed=done)

    errors = stderr()

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

    def run_one(path: Source, _name: str, cb: ProgressFn | None) -> SceneResult:
        return predict_scene(path, out, net, config, options, name=base_names[path], progress=cb)

    with bar:
        report = predict_files(todo, run_one, advance, show)
    done, failed = len(report.results), len(report.failures)
    if failed:
        failed_names = ", ".join(escape(f.input.name) for f in report.failures)
        errors.print(f"[bold red]{failed} of {done + failed} inputs failed:[/] {failed_names}")
        raise typer.Exit(EXIT_FAILURE)
    console.print(f"predicted {done} input{'s' if done != 1 else ''} into {escape(str(out))}")


def register(app: typer.Typer) -> None:
    """Add ``lale predict`` to ``app``."""
    add_command(app, "predict", predict_command)
