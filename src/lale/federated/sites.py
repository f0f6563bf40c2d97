"""The sites of a federation: one lale dataset each, given or cut from one dataset.

``lale federate --sites a/ b/ c/`` takes one dataset (folder or shard set) per site.
``--split-by region|tile|random`` cuts one folder dataset into K sites instead, each an ordinary
dataset of links to the original files under ``OUT/sites/NAME``:

- ``region``: spatial blocks, as ``lale prepare`` makes them (``BLOCK×BLOCK`` neighbouring
  patches of a tile), laid out tile by tile, row by row, and cut into K runs of about equal
  patch counts, so each site is one contiguous area. Each split is cut on its own: site k
  gets the k-th run of train, of val and of test. A patch's place comes from its name
  (``TILE_rROW_cCOL``, as ``lale prepare`` and ``lale synth --scene-size`` write them) or from
  its GeoTIFF's georeference.
- ``tile``: whole tiles (with their patches of every split), dealt to the sites largest first,
  each to the site with fewest patches.
- ``random``: patches dealt at random (a seeded permutation): the IID control.

Every site must end up with train, val and test patches of its own.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lale.data.io.layout import Pair, scan_folder
from lale.data.prepare.splits import SPLITS
from lale.data.schema import ClassSchema, resolve_schema
from lale.data.shards import is_shards
from lale.errors import DataError, UsageError
from lale.run_layout import DATASET_SCHEMA

__all__ = [
    "SPLIT_KINDS",
    "Site",
    "SplitKind",
    "check_schemas",
    "given_sites",
    "patch_place",
    "split_into_sites",
]

SplitKind = Literal["region", "tile", "random"]
SPLIT_KINDS: tuple[SplitKind, ...] = ("region", "tile", "random")
_PLACE = re.compile(r"^(?P<tile>.+)_r(?P<row>\d+)_c(?P<col>\d+)$")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Site:
    """One site: its name and its dataset root."""

    name: str
    root: Path


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        base = path.resolve().name or "site"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def given_sites(paths: Sequence[Path]) -> list[Site]:
    """The sites of ``--sites``, named by their folders (made distinct).

    Raises:
        DataError: A site folder does not exist or is not a dataset (names it).
        UsageError: Fewer than two sites, or one folder given twice.
    """
    if len(paths) < 2:
        raise UsageError("a federation needs at least two sites (--sites A B ...)")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise UsageError("--sites: a dataset is given twice")
    for path in paths:
        if not path.is_dir():
            raise DataError(path, "site not found: no such dataset folder")
        if not is_shards(path) and not (path / "train").is_dir():
            raise DataError(path, "site is not a lale dataset (no train/ folder, no shard set)")
    return [Site(n, p) for n, p in zip(_unique_names(paths), paths, strict=True)]


def check_schemas(sites: Sequence[Site], schema: str | Path | None) -> ClassSchema:
    """The one class schema every site uses; a site whose schema differs is a one-line error.

    Raises:
        DataError: A site's schema names other classes, colours or values than the first
            site's (names the site and its schema file).
    """
    first = resolve_schema(sites[0].root, schema)
    for site in sites[1:]:
        own = resolve_schema(site.root, schema)
        if own.to_dict() != first.to_dict():
            where = site.root / DATASET_SCHEMA
            differs = (
                f"classes {list(own.names)} instead of {list(first.names)}"
                if own.names != first.names
                else "the same classes with other colours, values or ignore index"
            )
            raise DataError(
                where if where.exists() else site.root,
                f"site {site.name}: its class schema differs from site {sites[0].name}'s "
                f"({differs}); every site must label its masks with one schema",
            )
    return first


def patch_place(pair: Pair, block: int) -> tuple[str, int, int] | None:
    """``(tile, block row, block column)`` of a patch, or ``None`` when it says nowhere.

    From the name (``TILE_rROW_cCOL``, rows and columns in patches), else from the image's
    georeference (the block's corner in the image CRS, in units of ``BLOCK`` patches).
    """
    if match := _PLACE.match(pair.name):
        row, col = int(match["row"]), int(match["col"])
        return match["tile"], row // block, col // block
    if pair.image.suffix.lower() not in (".tif", ".tiff"):
        return None
    import rasterio

    with rasterio.open(pair.image) as src:
        if src.crs is None or src.transform.is_identity:
            return None
        x, y = src.transform.c, src.transform.f
        span_x = abs(src.transform.a) * src.width * block
        span_y = abs(src.transform.e) * src.height * block
        return str(src.crs), math.floor(-y / span_y), math.floor(x / span_x)


def _balanced_runs(keys: Sequence[object], sizes: Sequence[int], k: int) -> list[int]:
    """Cut ``keys`` (in order) into ``k`` runs of about equal total size: each key's run."""
    total = sum(sizes)
    cuts = np.arange(1, k) * total / k
    done, runs = 0.0, []
    for size in sizes:
        runs.append(int(np.searchsorted(cuts, done + size / 2, side="right")))
        done += size
    return runs


def _assign(kind: SplitKind, pairs: list[Pair], k: int, seed: int, block: int) -> list[int]:
    """The site of every pair of one dataset (all splits together)."""
    if kind == "random":
        order = np.random.default_rng(seed).permutation(len(pairs))
        site = np.empty(len(pairs), int)
        site[order] = np.arange(len(pairs)) % k
        return [int(s) for s in site]
    places = [patch_place(p, block) for p in pairs]
    if missing := next((p for p, w in zip(pairs, places, strict=True) if w is None), None):
        raise DataError(
            missing.image,
            f"--split-by {kind}: this patch says nowhere where it lies (its name is not "
            "TILE_rROW_cCOL and it is not a georeferenced GeoTIFF); use --split-by random",
        )
    known = [w for w in places if w is not None]
    if kind == "tile":
        tiles = sorted({w[0] for w in known})
        if len(tiles) < k:
            raise UsageError(f"--split-by tile: {len(tiles)} tiles for {k} sites; use region")
        count = {t: sum(1 for w in known if w[0] == t) for t in tiles}
        load, owner = [0] * k, {}
        for tile in sorted(tiles, key=lambda t: (-count[t], t)):
            owner[tile] = min(range(k), key=lambda s: (load[s], s))
            load[owner[tile]] += count[tile]
        return [owner[w[0]] for w in known]
    blocks = sorted(set(known))
    sizes = [sum(1 for w in known if w == b) for b in blocks]
    run = dict(zip(blocks, _balanced_runs(blocks, sizes, k), strict=True))
    return [run[w] for w in known]


def _link(target: object, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path(str(target)).resolve())


def split_into_sites(
    data: Path,
    kind: SplitKind,
    count: int,
    out: Path,
    seed: int = 0,
    block: int = 4,
    say: Say = print,
) -> list[Site]:
    """Cut the folder dataset ``data`` into ``count`` sites under ``out`` (see module doc).

    ``out`` is rebuilt from scratch (it holds links only). Every site must get train, val and
    test patches.

    Raises:
        DataError: ``data`` is not a folder dataset, or a patch has no place (region, tile).
        UsageError: Fewer than two sites, fewer tiles than sites, or a site without patches
            in some split.
    """
    if count < 2:
        raise UsageError(f"--split-by {kind} needs at least 2 sites, got {count}")
    if is_shards(data):
        raise DataError(data, "--split-by cuts a folder dataset; give a shard set per site")
    by_split = {split: scan_folder(data, split) for split in SPLITS}
    if kind == "tile":  # a tile's patches stay together, whatever their split
        pairs = [p for split in SPLITS for p in by_split[split]]
        owners = iter(_assign(kind, pairs, count, seed, block))
    else:  # each split cut on its own into the same K areas (region) or shares (random)
        owners = iter(
            [
                s
                for i, split in enumerate(SPLITS)
                for s in _assign(kind, by_split[split], count, seed + i, block)
            ]
        )
    names = [f"site-{i + 1}" for i in range(count)]
    if out.exists():
        shutil.rmtree(out)
    held: dict[tuple[str, str], int] = {}
    for split in SPLITS:
        for pair in by_split[split]:
            name = names[next(owners)]
            root = out / name / split
            _link(pair.image, root / "images" / pair.image.name)
            _link(pair.mask, root / "masks" / pair.mask.name)
            held[name, split] = held.get((name, split), 0) + 1
    for name in names:
        if empty := [s for s in SPLITS if not held.get((name, s))]:
            raise UsageError(
                f"--split-by {kind}: {name} gets no {'/'.join(empty)} patches from {data}; "
                "use fewer sites or another --split-by"
            )
    for extra in (DATASET_SCHEMA, "prepare.json"):
        if (data / extra).is_file():
            for name in names:
                shutil.copyfile(data / extra, out / name / extra)
    summary = ", ".join(f"{n} {'/'.join(str(held[n, s]) for s in SPLITS)}" for n in names)
    say(f"{count} sites by {kind} from {data} (train/val/test patches): {summary}")
    return [Site(n, out / n) for n in names]
