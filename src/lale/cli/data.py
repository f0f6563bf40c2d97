"""``lale synth``, ``lale prepare`` and ``lale pack``: thin commands over :mod:`lale.data`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, fail, progress_bar, stdout
from lale.errors import UnavailableError


def synth_command(
    out: Annotated[Path, typer.Argument(help="Dataset root to write ({split}/{images,masks}).")],
    train: Annotated[int, typer.Option(min=0, help="Training patches.")] = 800,
    val: Annotated[int, typer.Option(min=0, help="Validation patches.")] = 100,
    test: Annotated[int, typer.Option(min=0, help="Test patches.")] = 100,
    size: Annotated[int, typer.Option(min=32, help="Patch side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(min=0, help="Dataset seed (same seed, same bytes).")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes to generate with.")] = 1,
    scene_size: Annotated[
        int | None,
        typer.Option(
            min=32,
            help="Cut the patches from scenes of this side (a multiple of --size), one split "
            "per scene, named SPLIT-sceneNNNN_rROW_cCOL like lale prepare's patches: the data "
            "then have regions (lale federate --split-by region) [every patch its own scene].",
        ),
    ] = None,
    mosaic: Annotated[
        bool, typer.Option(help="Also write OUT/samples.png: 8 training patches and masks.")
    ] = True,
) -> None:
    """Write procedurally generated Sentinel-2-like land-cover patches in the ARAS400k layout."""
    import numpy as np
    from rich.table import Table

    from lale.output_paths import check_output_dir

    if scene_size is not None and scene_size % size:
        raise fail(f"--scene-size {scene_size} is not a multiple of --size {size}")
    check_output_dir(out)
    from lale.data.synthetic import generate_scene, patch_rng, save_mosaic, write_dataset

    with progress_bar() as bar:
        task = bar.add_task("generating patches", total=train + val + test)
        summary = write_dataset(
            out,
            train=train,
            val=val,
            test=test,
            size=size,
            seed=seed,
            workers=workers,
            scene_size=scene_size,
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
        if scene_size is None:
            samples = [
                generate_scene(patch_rng(seed, "train", i), size) for i in range(min(8, train))
            ]
        else:  # the first training scene's first patches, as written
            image, labels = generate_scene(patch_rng(seed, "train", 0), scene_size)
            side = scene_size // size
            cells = [divmod(q, side) for q in range(min(8, train, side * side))]
            windows = [
                np.s_[r * size : (r + 1) * size, c * size : (c + 1) * size] for r, c in cells
            ]
            samples = [(image[w], labels[w]) for w in windows]
        save_mosaic(Path(out) / "samples.png", samples)
        console.print(f"wrote {escape(str(Path(out) / 'samples.png'))}")


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
    scaling: Annotated[
        Literal["truecolor", "aras400k"],
        typer.Option(
            help="8-bit rule: truecolor (ESA, reflectance 0–0.2 → 0–255) or aras400k "
            "(each patch / its own max × 255, truncated)."
        ),
    ] = "truecolor",
) -> None:
    """Cut Sentinel-2 GeoTIFF tiles and ESA WorldCover maps into ARAS400k-layout patches.

    Labels are warped (nearest) onto each patch's grid; bands are scaled to 8 bits by ESA's
    true-colour rule (reflectance 0–0.2 → 0–255), or with --scaling aras400k by ARAS400k's
    rule (each patch divided by its own maximum over all bands). Whole BLOCK×BLOCK groups of
    patches go to one split. Writes OUT/{train,val,test}/{images,masks}/ and OUT/prepare.json.
    Patches are written atomically; an interrupted run resumes when rerun with the same inputs
    and options.
    """
    from lale.output_paths import check_output_dir

    check_output_dir(out, create=False)
    try:
        from lale.data import prepare as prep
    except ImportError as err:
        raise UnavailableError(
            f"lale prepare needs rasterio ({err}): pip install rasterio"
        ) from None
    from lale.data.io.bands import parse_bands

    options = prep.PrepareOptions(
        patch=patch,
        bands=parse_bands(bands),
        split=prep.parse_split(split),
        seed=seed,
        block=block,
        offset=prep.parse_offset(offset),
        scaling=scaling,
    )
    with progress_bar() as bar:
        task = bar.add_task("preparing patches", total=None)
        summary = prep.prepare_dataset(
            imagery,
            labels,
            out,
            options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console = stdout()
    console.print(prep.summary_table(summary))
    console.print(prep.class_table(summary))
    console.print(f"wrote {escape(str(summary.json_path))}")


def pack_command(
    data: Annotated[
        Path,
        typer.Argument(help="Dataset root ({split}/{images,masks}), or Parquet file(s) of pairs."),
    ],
    out: Annotated[Path, typer.Option(help="Shard set to write (new or empty folder).")],
    shard_size: Annotated[
        str, typer.Option(help="Bytes per shard file (256MB, 1GB, …).")
    ] = "256MB",
    schema: Annotated[
        str | None,
        typer.Option(help="Class schema to store (default: DATA/schema.json, else aras400k)."),
    ] = None,
    image_column: Annotated[str, typer.Option(help="Parquet column of the images.")] = "image",
    mask_column: Annotated[
        str | None,
        typer.Option(help="Parquet column of the masks (default: mask, label, annotation, …)."),
    ] = None,
) -> None:
    """Write every split of a dataset as LitData shards that lale train and evaluate read.

    Images and masks keep their encoded bytes; the class schema (with its band statistics) and
    prepare.json go with them. DATA may also be a Hugging Face dataset saved as Parquet
    ({split}-*.parquet with encoded image and mask columns).
    """
    from rich.table import Table

    from lale.data.shards.pack import pack_dataset, parse_shard_size

    size = parse_shard_size(shard_size)
    with progress_bar() as bar:
        task = bar.add_task("packing samples", total=None)
        summary = pack_dataset(
            data,
            out,
            schema,
            size,
            image_column=image_column,
            mask_column=mask_column,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    table = Table(title=f"shards {escape(str(out))} ({summary.source}, schema {summary.schema})")
    for column in ("split", "samples", "shards", "MB"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for s in summary.splits:
        table.add_row(s.name, str(s.samples), str(s.shards), f"{s.bytes / 1e6:.1f}")
    stdout().print(table)


def register(app: typer.Typer) -> None:
    """Add ``lale synth``, ``lale prepare`` and ``lale pack`` to ``app``."""
    add_command(app, "synth", synth_command)
    add_command(app, "prepare", prepare_command)
    add_command(app, "pack", pack_command)
