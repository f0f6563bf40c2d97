"""``lale areas`` and ``lale change``: map products made from lale class maps.

Thin commands over :mod:`lale.maps`: areas of every class (in every zone of a polygon layer),
and the change between two maps of the same classes. Every output of a command appears at once
when all are written (:class:`lale.maps.staging.StagedOutputs`), after the output folder was
checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lale.cli._common import add_command, progress_bar, stderr, stdout
from lale.errors import UsageError

if TYPE_CHECKING:
    from lale.inference.areas import AreaTable
    from lale.maps.classmap import ClassMap


@contextmanager
def _bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    bar = progress_bar(disable=not enabled)
    task = bar.add_task(escape(label), total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


def _note_index_names(cm: ClassMap) -> None:
    if cm.named_by_index:
        stderr().print(
            f"note: {escape(str(cm.path))} has no 'classes' tag: its {cm.num_classes} classes "
            "are named by index (class 0, class 1, …)",
            soft_wrap=True,
        )


def _written(paths: list[Path]) -> None:
    stdout().print("wrote " + ", ".join(escape(str(p)) for p in paths), soft_wrap=True)


def areas_command(
    map_path: Annotated[Path, typer.Argument(metavar="MAP", help="Class map (lale predict's).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    zones: Annotated[
        Path | None,
        typer.Option(
            help="Polygon layer of zones (GeoPackage, GeoJSON, …), any CRS [the whole map]."
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Field naming the zones (default: their position).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Base name of the outputs (default: MAP's name).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Zones shown in the chart.")] = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Area (km², %) of every class of MAP, or of every class in every zone of --zones.

    Without --zones: NAME_areas.csv/.json/.png for the whole map. With --zones: NAME_zones.csv/
    .json and a stacked bar chart NAME_zones.png; partial pixels count by the share of the pixel
    inside the zone (exactextract), zones are reprojected to the map's CRS, no-data is reported
    per zone, and zones off the map are reported with zero area and a warning.
    """
    from lale.maps.classmap import open_class_map
    from lale.maps.figures import area_bars, zone_bars
    from lale.maps.staging import StagedOutputs
    from lale.output_paths import check_output_dir

    if by is not None and zones is None:
        raise UsageError("--by names a field of --zones; give --zones too")
    check_output_dir(out)
    cm = open_class_map(map_path)
    _note_index_names(cm)
    base = name or map_path.stem
    context = {"map": str(map_path), "crs": None if cm.crs is None else cm.crs.to_string()}
    if zones is None:
        from lale.maps.zonal import map_areas

        with _bar(map_path.name, progress) as advance:
            table = map_areas(cm, advance)
        unit = "pixels" if table.km2 is None else "km²"
        with StagedOutputs() as staged:
            staged.write_bytes(out / f"{base}_areas.csv", table.to_csv().encode("utf-8"))
            staged.write_json(out / f"{base}_areas.json", table.to_dict(**context))
            values = table.pixels if table.km2 is None else table.km2
            area_bars(
                staged.path(out / f"{base}_areas.png"), cm.names, values, cm.colours, unit,
                f"{map_path.name}: area per class",
            )  # fmt: skip
            written = staged.commit()
        _show_areas(map_path, table)
        _written(written)
        return
    from lale.maps.zonal import zonal_areas
    from lale.maps.zones import read_zones

    def warn(message: str) -> None:
        stderr().print(escape(message), soft_wrap=True)

    zone_list = read_zones(zones, by, cm.crs, warn)
    with _bar(f"{map_path.name} × {zones.name}", progress) as advance:
        result = zonal_areas(cm, zone_list, advance)
    for zone in result.zones:
        if not zone.on_map:
            stderr().print(
                f"warning: zone {escape(repr(zone.name))} of {escape(str(zones))} does not "
                "overlap the map (or has no geometry): reported with zero area",
                soft_wrap=True,
            )
    import numpy as np

    unit = "pixels" if result.method == "none" else "km²"
    with StagedOutputs() as staged:
        staged.write_bytes(out / f"{base}_zones.csv", result.to_csv().encode("utf-8"))
        staged.write_json(
            out / f"{base}_zones.json", result.to_dict(**context, zones_file=str(zones), by=by)
        )
        zone_bars(
            staged.path(out / f"{base}_zones.png"), [z.name for z in result.zones],
            np.array([z.measure for z in result.zones]).reshape(len(result.zones), -1),
            cm.names, cm.colours, unit, f"{map_path.name}: area per class and zone", top,
        )  # fmt: skip
        written = staged.commit()
    off = sum(not z.on_map for z in result.zones)
    stdout().print(
        f"{len(result.zones)} zones ({off} off the map), {cm.num_classes} classes, "
        f"areas in {unit} ({result.method})"
    )
    _written(written)


def _show_areas(path: Path, areas: AreaTable) -> None:
    from rich.table import Table

    table = Table(title=escape(path.name), title_justify="left")
    for column in ("class", "pixels", "%") + (() if areas.km2 is None else ("km²",)):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in areas.rows():
        cells = [escape(row["class"]), f"{row['pixels']:,}", f"{row['percent']:.2f}"]
        table.add_row(*cells, *([f"{row['km2']:.4f}"] if "km2" in row else []))
    stdout().print(table)


def change_command(
    map_a: Annotated[Path, typer.Argument(metavar="MAP_A", help="Earlier class map.")],
    map_b: Annotated[Path, typer.Argument(metavar="MAP_B", help="Later class map.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    name: Annotated[str, typer.Option(help="Base name of the outputs.")] = "change",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Change from MAP_A to MAP_B: transition matrix (km²), gains/losses, change raster.

    Writes NAME_matrix.csv (from-class rows × to-class columns), NAME_classes.csv (area in A
    and B, gains, losses, net), NAME.json (all of it, with the no-data counts), NAME.tif (code
    from × K + to, colour table, no-data where either map has none), NAME_legend.png and
    NAME_heatmap.png. MAP_B is resampled onto MAP_A's grid (nearest) when the grids differ;
    both maps must name the same classes.
    """
    from lale.maps.change import change_colours, compare_maps
    from lale.maps.classmap import open_class_map
    from lale.maps.figures import change_heatmap, change_legend
    from lale.maps.staging import StagedOutputs
    from lale.output_paths import check_output_dir

    check_output_dir(out)
    a, b = open_class_map(map_a), open_class_map(map_b)
    _note_index_names(a)
    _note_index_names(b)
    with StagedOutputs() as staged:
        raster = staged.path(out / f"{name}.tif")
        with _bar(f"{map_a.name} → {map_b.name}", progress) as advance:
            result = compare_maps(a, b, raster, advance)
        context = {
            "map_a": str(map_a),
            "map_b": str(map_b),
            "crs": None if a.crs is None else a.crs.to_string(),
        }
        unit = "pixels" if result.km2 is None else "km²"
        staged.write_bytes(out / f"{name}_matrix.csv", result.matrix_csv().encode("utf-8"))
        staged.write_bytes(out / f"{name}_classes.csv", result.classes_csv().encode("utf-8"))
        staged.write_json(out / f"{name}.json", result.to_dict(**context))
        colours = a.colours if len(a.colours) == len(result.names) else b.colours
        change_heatmap(
            staged.path(out / f"{name}_heatmap.png"), result.measure, result.names, unit,
            f"{map_a.name} → {map_b.name}",
        )  # fmt: skip
        change_legend(
            staged.path(out / f"{name}_legend.png"), result.measure, result.names,
            change_colours(colours), unit,
        )  # fmt: skip
        written = staged.commit()
    same_crs = a.crs == b.crs or b.crs is None
    how = "resampled" if same_crs else f"reprojected from {b.crs.to_string()}"
    _show_change(result, unit, map_b, how)
    _written(written)


def _show_change(result: object, unit: str, map_b: Path, how: str) -> None:
    from rich.table import Table

    from lale.maps.change import ChangeResult

    assert isinstance(result, ChangeResult)
    table = Table(title="change per class", title_justify="left")
    for column in ("class", f"A {unit}", f"B {unit}", "gains", "losses", "net"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result.summary():
        values = (row["a"], row["b"], row["gains"], row["losses"], row["net"])
        table.add_row(escape(row["class"]), *(f"{v:,.4f}" for v in values))
    console = stdout()
    console.print(table)
    nd = result.nodata_pixels
    console.print(
        f"no data, left out: {nd['a_only']:,} px in A only, {nd['b_only']:,} in B only, "
        f"{nd['both']:,} in both"
        + (
            f"; {escape(map_b.name)} {escape(how)} onto A's grid (nearest)"
            if result.resampled
            else ""
        ),
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``lale areas`` and ``lale change`` to ``app``."""
    add_command(app, "areas", areas_command)
    add_command(app, "change", change_command)
