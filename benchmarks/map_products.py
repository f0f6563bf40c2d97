"""COG writing and vectorisation of a full-size class map: time, peak memory, features (not a test).

Usage (from the repository root)::

    .venv/bin/python benchmarks/map_products.py                 # 10980², a full Sentinel-2 tile
    .venv/bin/python benchmarks/map_products.py --size 4096     # a smaller map

Generates a ``size²`` uint8 class map (7 classes, 10 m pixels in EPSG:32635, no-data 255 in a
corner wedge; blobby land cover: fractal value noise from lale's synthetic scenes cut at
quantiles, so regions from single pixels to many kilometres) as the tiled DEFLATE GeoTIFF that
``lale predict`` writes before its COG conversion, in a temporary folder deleted afterwards.
Then, each in a **child process** (peak RSS = its ``VmHWM``):

- **cog**: the map streamed by 256-row bands through :class:`lale.inference.cog.CogRows`
  (tiled GeoTIFF, then GDAL's COG driver with mode overviews), as the predictor writes it;
- **vector**: :func:`lale.inference.vectorize.vectorize_class_map` into a GeoPackage, by bands
  of 1024 rows, with a sieve (``--min-area``) and without.

Writes ``benchmarks/results/map_products_cpu.json`` and ``.md`` with the machine, load average
and library versions.
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
from rasterio.windows import Window

from lale.data.synthetic.noise import smooth_field
from lale.profiling.environment import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
FULL_TILE = 10980
CLASSES = 7
CHILD = r"""
import json, sys, time
from pathlib import Path
step, src, dst = sys.argv[1:4]
t0 = time.perf_counter()
out = {}
if step == "cog":
    import rasterio
    from rasterio.windows import Window
    from lale.inference.cog import CogRows
    from lale.inference.scene import open_scene
    with open_scene(Path(src)) as scene, rasterio.open(src) as f:
        sink = CogRows(Path(dst), scene, 1, "mode", 255)
        for r0 in range(0, f.height, 256):
            h = min(256, f.height - r0)
            sink.write(r0, f.read(1, window=Window(0, r0, f.width, h)))
        sink.finish()
    out["bytes"] = sink.tmp.stat().st_size
    sink.tmp.unlink()
else:
    from lale.inference.vector_options import VectorOptions
    from lale.inference.vectorize import vectorize_class_map
    opts = VectorOptions("gpkg", float(sys.argv[4]), "px", None, int(sys.argv[5]))
    s = vectorize_class_map(Path(src), Path(dst), [f"c{k}" for k in range(7)], opts)
    out["features"] = s.features
    out["area_km2"] = sum(s.area_m2.values()) / 1e6
    out["bytes"] = Path(dst).stat().st_size
    Path(dst).unlink()
out["seconds"] = time.perf_counter() - t0
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
out["cpu_seconds"] = usage.ru_utime + usage.ru_stime
status = open("/proc/self/status").read().splitlines()
out["vm_hwm_kb"] = next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))
print(json.dumps(out))
"""


def write_class_map(path: Path, size: int, seed: int = 0, strip: int = 1024) -> dict[str, Any]:
    """A blobby ``size²`` class map written strip by strip; returns its class shares."""
    field = smooth_field(np.random.default_rng(seed), size, cells=3, octaves=6, persistence=0.6)
    sub = field[::8, ::8]
    edges = np.quantile(sub, np.linspace(0, 1, CLASSES + 1)[1:-1])
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32635",
        "transform": Affine(10, 0, 300_000, 0, -10, 4_600_000),
        "nodata": 255,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "bigtiff": "if_safer",
    }
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, strip):
            h = min(strip, size - r0)
            classes = np.digitize(field[r0 : r0 + h], edges).astype(np.uint8)
            rows = np.arange(r0, r0 + h)[:, None]
            classes[rows + np.arange(size)[None] < size // 5] = 255  # no-data wedge
            counts += np.bincount(classes.ravel(), minlength=256)
            dst.write(classes[None], window=Window(0, r0, size, h))
    del field
    return {"valid_pixels": int(counts[:CLASSES].sum()), "nodata_pixels": int(counts[255])}


def run_child(*args: str) -> dict[str, Any]:
    """One measured step in a child process; its JSON line with ``peak_mb`` and ``wall_s``."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_mb"] = out.pop("vm_hwm_kb") / 1024
    out["wall_s"] = time.perf_counter() - start
    return out


def versions() -> dict[str, str | None]:
    from lale.profiling.environment import distribution_versions

    return {
        "gdal": rasterio.__gdal_version__,
        **distribution_versions("rasterio", "shapely", "pyogrio", "pyproj", "numpy", "rio-cogeo"),
    }


def markdown(result: dict[str, Any]) -> str:
    s, env = result["settings"], result["environment"]
    size = s["size"]
    lines = [
        "# Map products on CPU: COG writing and vectorisation",
        "",
        f"Generated by `python benchmarks/map_products.py --size {size}`"
        + ("" if size == FULL_TILE else f" (a {size}² map, not the full {FULL_TILE}² tile)")
        + f". A synthetic blobby {size} × {size} uint8 class map ({CLASSES} classes, 10 m "
        "pixels, EPSG:32635, no-data wedge); each step in its own child process, peak RSS = "
        "its VmHWM.",
        "",
        f"- machine: {env['cpu']}, {env['cpu_count']} cores, load average before "
        f"{env['load_before']:.2f}; single-threaded GDAL/GEOS",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"- map: {s['valid_pixels']:,} valid pixels, {s['nodata_pixels']:,} no-data",
        "",
        "| step | wall s | CPU s | peak RSS (MB) | features | output (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["steps"].items():
        feats = f"{r['features']:,}" if "features" in r else "–"
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_mb']:.0f} | "
            f"{feats} | {r['bytes'] / 2**20:.1f} |"
        )
    lines += [
        "",
        "Wall times on a shared, loaded machine (see the load average) are several times the "
        "CPU times; the CPU column is the child's user + system time.",
        "",
        "`cog`: rows streamed through `CogRows` (tiled GeoTIFF, then GDAL's COG driver, mode "
        "overviews). `vector`: `vectorize_class_map` into a GeoPackage by bands of "
        f"{s['block_rows']} rows (sieve: regions under {s['sieve_px']} px merged first).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=FULL_TILE)
    parser.add_argument("--block-rows", type=int, default=1024)
    parser.add_argument("--sieve", type=int, default=10, help="sieve threshold, pixels")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "classes.tif"
        t0 = time.perf_counter()
        shares = write_class_map(src, args.size)
        print(f"map {args.size}² written in {time.perf_counter() - t0:.0f} s", flush=True)
        steps: dict[str, Any] = {}
        steps["cog"] = run_child("cog", str(src), str(Path(tmp) / "cog.tif"))
        print("cog", steps["cog"], flush=True)
        gpkg = str(Path(tmp) / "v.gpkg")
        name = f"vector, sieve {args.sieve} px"
        steps[name] = run_child("vector", str(src), gpkg, str(args.sieve), str(args.block_rows))
        print(name, steps[name], flush=True)
        steps["vector, no sieve"] = run_child("vector", str(src), gpkg, "0", str(args.block_rows))
        print("vector, no sieve", steps["vector, no sieve"], flush=True)
    result = {
        "settings": {
            "size": args.size,
            "block_rows": args.block_rows,
            "sieve_px": args.sieve,
            **shares,
        },
        "environment": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "load_before": load,
            "versions": versions(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "steps": steps,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "map_products_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "map_products_cpu.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
