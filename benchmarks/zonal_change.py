"""Zonal areas and change between two dates on a full Sentinel-2-sized class map (not a test).

Usage (from the repository root)::

    .venv/bin/python benchmarks/zonal_change.py                  # 10980², a few minutes
    .venv/bin/python benchmarks/zonal_change.py --size 4096      # a smaller pair
    .venv/bin/python benchmarks/zonal_change.py --figure docs/images/change_example.png

Generates, in a temporary folder, two uint8 class maps of ``--size``² pixels (10 m, EPSG:32635,
256² tiles, DEFLATE, the ARAS400k classes and colours, ``classes`` tag as ``lale predict`` writes
it): a smooth random land-cover pattern for date A, the same pattern nudged by a second random
field for date B (so classes change along their borders and in patches), each with its own
no-data region (a corner wedge in A, a cloud disk in B). The zones are ``--zones`` Voronoi
polygons of random points over the map's extent grown by 5 % (some zones lie partly off the
map), written as a GeoPackage in EPSG:4326 so that they are reprojected. Then, each in a child
process, it times the commands a user types:

- ``lale areas A --out …`` (whole-map area table),
- ``lale areas A --zones zones.gpkg --by district --out …`` (exactextract coverage fractions),
- ``lale change A B --out …`` (transition matrix and the change raster, written by strips),

and records the wall time and the child's peak RSS (``VmHWM``). Writes
``benchmarks/results/zonal_change_cpu.json`` and ``.md`` with the device, load average and
library versions; the generated files are deleted. ``--figure`` instead writes the README's
change figure from a 512² pair.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.windows import Window

from lale.data.schema import ARAS400K
from lale.profiling import collect_environment

RESULTS = Path(__file__).resolve().parent / "results"
FULL_TILE = 10980
CELLS = 27  # cells of the random fields per map side: patches of about 1/27 of the map
CHILD = r"""
import sys
from lale.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    with open("/proc/self/status") as fh:
        hwm = next((l.split()[1] for l in fh if l.startswith("VmHWM")), "0")
    print("VM_HWM_KB", hwm, file=sys.stderr)
"""


def _fields(cells: int, seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(7, cells + 3, cells + 3)).astype(np.float32)
    a[0] += 0.4  # more trees, as in the tropics
    return a, a + 0.35 * rng.normal(size=a.shape).astype(np.float32)


def _classes(field: NDArray[np.float32], r0: int, h: int, size: int) -> NDArray[np.uint8]:
    """Bilinear upsampling of the per-class fields, then the argmax, for rows ``r0 … r0+h``."""
    scale = size / (field.shape[1] - 3)
    y = np.arange(r0, r0 + h) / scale
    iy, wy = y.astype(int), (y % 1).astype(np.float32)[:, None]
    rows = field[:, iy] * (1 - wy) + field[:, iy + 1] * wy
    x = np.arange(size) / scale
    ix, wx = x.astype(int), (x % 1).astype(np.float32)
    return np.argmax(rows[:, :, ix] * (1 - wx) + rows[:, :, ix + 1] * wx, axis=0).astype(np.uint8)


def write_pair(
    a_path: Path, b_path: Path, size: int, seed: int = 0, cells: int = CELLS, strip: int = 512
) -> None:
    """Write the two class maps (date A, date B) by strips; ``cells`` sets the patch size."""
    fa, fb = _fields(cells, seed)
    profile: dict[str, Any] = {
        "driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
        "crs": "EPSG:32635", "transform": Affine(10, 0, 500_000, 0, -10, 4_500_000),
        "nodata": 255, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate",
    }  # fmt: skip
    cmap = {i: (*c, 255) for i, c in enumerate(ARAS400K.display_colors)}
    cols = np.arange(size)[None]
    with rasterio.open(a_path, "w", **profile) as da, rasterio.open(b_path, "w", **profile) as db:
        for dst in (da, db):
            dst.write_colormap(1, cmap)
            dst.update_tags(classes=json.dumps(list(ARAS400K.names)), schema=ARAS400K.name)
        for r0 in range(0, size, strip):
            h = min(strip, size - r0)
            rows = np.arange(r0, r0 + h)[:, None]
            a = _classes(fa, r0, h, size)
            a[rows + cols < size // 8] = 255  # no-data wedge in A's corner
            b = _classes(fb, r0, h, size)
            b[(rows - 0.6 * size) ** 2 + (cols - 0.4 * size) ** 2 < (0.12 * size) ** 2] = 255
            da.write(a, 1, window=Window(0, r0, size, h))
            db.write(b, 1, window=Window(0, r0, size, h))


def write_zones(path: Path, size: int, count: int, seed: int = 0) -> None:
    """``count`` Voronoi zones over the map's extent grown by 5 %, in EPSG:4326."""
    import pyogrio
    import pyproj
    import shapely

    x0, y1, side = 500_000.0, 4_500_000.0, 10.0 * size
    grow = 0.05 * side
    frame = shapely.box(x0 - grow, y1 - side - grow, x0 + side + grow, y1 + grow)
    rng = np.random.default_rng(seed)
    points = shapely.points(rng.uniform(frame.bounds[:2], frame.bounds[2:], (count, 2)))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame)
    )
    cells = shapely.segmentize(shapely.intersection(cells, frame), side / 50)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:32635", "EPSG:4326", always_xy=True)
    cells = shapely.transform(cells, lambda xy: np.column_stack(to_lonlat.transform(*xy.T)))
    names = np.array([f"D{i:03d}" for i in range(len(cells))], dtype=object)
    pyogrio.raw.write(
        path, np.array(shapely.to_wkb(cells), dtype=object), [names], ["district"],
        driver="GPKG", crs="EPSG:4326", geometry_type="Polygon",
    )  # fmt: skip


def run_command(args: list[str], cachemax: int | None = None) -> tuple[float, float]:
    """Run ``lale ARGS`` in a child; returns wall seconds and its peak RSS (MB).

    ``cachemax`` sets GDAL's block cache (MB) in the child; ``None`` keeps GDAL's default.
    """
    env = dict(os.environ)
    if cachemax is not None:
        env["GDAL_CACHEMAX"] = str(cachemax)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args, "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"lale {' '.join(args)} failed: {done.stderr[-2000:]}")
    hwm = [line for line in done.stderr.splitlines() if line.startswith("VM_HWM_KB")]
    return wall, int(hwm[-1].split()[1]) / 1024


def library_versions() -> dict[str, str | None]:
    """Versions of the raster and vector libraries the commands used."""
    from lale.profiling.environment import distribution_versions

    return {
        "gdal": rasterio.__gdal_version__,
        **distribution_versions(
            "rasterio", "exactextract", "pyogrio", "shapely", "pyproj", "matplotlib"
        ),
    }


def markdown(result: dict[str, Any]) -> str:
    env, s = result["environment"], result["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        "# Zonal areas and change on a class map pair",
        "",
        f"Class maps of {s['size']} × {s['size']} px (10 m, EPSG:32635, uint8, 7 classes), "
        f"{s['zones']} Voronoi zones in EPSG:4326 (reprojected). Each command ran in a child "
        "process (`benchmarks/zonal_change.py`); peak RSS is the child's VmHWM. GDAL's block "
        "cache (GDAL_CACHEMAX) at its default (5 % of the RAM) or limited, as the table says.",
        "",
        f"Device: {env['device']} ({env['cpu_count']} CPUs), load average before "
        f"{s['loadavg']}, after {s['loadavg_after']}; {env['date']}.",
        f"Versions: {versions}.",
        "",
        "| command | GDAL cache | seconds | MPix/s | peak RSS (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["commands"].values():
        mb = r["gdal_cachemax_mb"]
        lines.append(
            f"| `{r['command']}` | {'default' if mb is None else f'{mb} MB'} | "
            f"{r['seconds']:.1f} | {s['size'] ** 2 / r['seconds'] / 1e6:.1f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    c = result["change"]
    lines += [
        "",
        f"Changed: {c['changed_km2']:.1f} of {c['compared_km2']:.1f} km² compared; no-data "
        f"left out (px): {c['nodata_pixels']}.",
        "",
    ]
    return "\n".join(lines)


def readme_figure(path: Path) -> None:
    """Two 512² synthetic maps, ``lale change`` on them, and one PNG: A, B, change, heat-map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        a, b = work / "2019.tif", work / "2024.tif"
        write_pair(a, b, 512, seed=3, cells=6)
        out = work / "out"
        from lale.cli import app

        app(["change", str(a), str(b), "--out", str(out), "--no-progress"], standalone_mode=False)
        fig, axes = plt.subplots(1, 4, figsize=(17, 4.6), width_ratios=[1, 1, 1, 1.25])
        for ax, (title, tif) in zip(
            axes,
            [("map A (2019)", a), ("map B (2024)", b), ("change", out / "change.tif")],
            strict=False,
        ):
            with rasterio.open(tif) as src:
                data = src.read(1)
                cmap = src.colormap(1)
            lut = np.array([cmap.get(i, (0, 0, 0, 0)) for i in range(256)], dtype=np.uint8)
            ax.imshow(lut[data], interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        axes[3].imshow(plt.imread(out / "change_heatmap.png"))
        axes[3].axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=60)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=FULL_TILE, help="map side in pixels")
    parser.add_argument("--zones", type=int, default=200, help="number of zones")
    parser.add_argument(
        "--gdal-cachemax",
        type=int,
        nargs="*",
        default=[0, 64],
        help="GDAL block caches (MB) to run the commands with, 0: GDAL's default",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="temporary files here")
    parser.add_argument("--figure", type=Path, default=None, help="write the README figure only")
    args = parser.parse_args()
    if args.figure is not None:
        readme_figure(args.figure)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        a, b, zones = work / "a.tif", work / "b.tif", work / "zones.gpkg"
        t0 = time.perf_counter()
        write_pair(a, b, args.size)
        write_zones(zones, args.size, args.zones)
        print(f"wrote the maps and zones in {time.perf_counter() - t0:.0f} s", flush=True)
        loadavg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        commands = {
            "lale areas A": ["areas", str(a), "--out", str(work / "areas")],
            "lale areas A --zones": [
                "areas", str(a), "--zones", str(zones), "--by", "district",
                "--out", str(work / "zones"),
            ],
            "lale change A B": ["change", str(a), str(b), "--out", str(work / "change")],
        }  # fmt: skip
        results: dict[str, Any] = {}
        for cache in args.gdal_cachemax:
            for name, cmd in commands.items():
                seconds, peak = run_command(cmd, cache or None)
                results[f"{name} | {cache or 'default'}"] = {
                    "command": name,
                    "gdal_cachemax_mb": cache or None,
                    "seconds": seconds,
                    "peak_rss_mb": peak,
                }
                print(f"{name} (cache {cache}): {seconds:.1f} s, {peak:.0f} MB", flush=True)
        change = json.loads((work / "change" / "change.json").read_text())
        zonal = json.loads((work / "zones" / "a_zones.json").read_text())
        env = collect_environment("cpu")
        env.versions.update(library_versions())
        result = {
            "environment": env.__dict__,
            "settings": {
                "size": args.size,
                "zones": args.zones,
                "zones_on_map": sum(z["on_map"] for z in zonal["zones"]),
                "loadavg": loadavg,
                "loadavg_after": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
                "full_tile": args.size == FULL_TILE,
            },
            "commands": results,
            "change": {
                "changed_km2": change["changed"],
                "compared_km2": change["compared"],
                "nodata_pixels": change["nodata_pixels"],
            },
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "zonal_change_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "zonal_change_cpu.md").write_text(markdown(result))
    print(f"wrote {RESULTS / 'zonal_change_cpu.md'}")


if __name__ == "__main__":
    main()
