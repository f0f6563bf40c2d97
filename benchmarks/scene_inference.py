"""Whole-scene inference speed and memory on a full Sentinel-2 tile (not a test).

Usage (from the repository root)::

    .venv/bin/python benchmarks/scene_inference.py                  # 10980², about 5-10 min
    .venv/bin/python benchmarks/scene_inference.py --size 4096      # a smaller scene
    .venv/bin/python benchmarks/scene_inference.py --threads 1 --backends torch onnx

Generates a 10980 × 10980 three-band uint16 GeoTIFF (a full Sentinel-2 tile at 10 m, EPSG:32635;
written by windows, 256² tiles, DEFLATE; a smooth random land-like texture with fine noise and a
no-data wedge in one corner, as real tiles at a swath edge have) in a temporary folder, then
predicts it with an untrained ``lale_t`` run (ARAS400k schema: the uint16 DNs go through the
8-bit true-colour rule, as for a model trained on ARAS400k) in a **child process** per backend:
``torch``, and ``onnx`` where :mod:`lale.inference.onnx.backend` exists and the run can be
exported. Measured per backend:

- **windows/s**: windows run through the model ÷ wall time of ``predict_scene`` (reading,
  model, stitching and writing all included); also megapixels/s of the scene;
- **peak RSS**: the child's ``VmHWM`` (``/proc/self/status`` at its end: the high-water mark of
  its resident memory after exec; ``ru_maxrss`` from ``os.wait4`` where there is no ``/proc``),
  which must stay under 3 GB.

Writes ``benchmarks/results/scene_inference_<device>.json`` and ``.md`` with the device, thread
count, load average and library versions. A scene smaller than 10980² is reported as measured,
with the full-tile time extrapolated by window count and clearly labelled as such.
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
import torch
from affine import Affine
from rasterio.windows import Window

from lale.data.schema import ARAS400K
from lale.inference.tiling import TileGrid
from lale.models import create_model
from lale.profiling import collect_environment
from lale.runs import RunConfig, save_run

RESULTS = Path(__file__).resolve().parent / "results"
FULL_TILE = 10980
RSS_LIMIT_MB = 3 * 1024
CHILD = r"""
import json, sys, time, torch
from lale.inference.options import PredictOptions
from lale.inference.predict import load_backend, predict_scene
run, scene, out, backend, tile, overlap, batch, threads = sys.argv[1:9]
if int(threads) > 0:
    torch.set_num_threads(int(threads))
t0 = time.perf_counter()
if backend == "onnx" and int(threads) > 0:  # onnxruntime's own thread pool
    from pathlib import Path
    from lale.inference.onnx.backend import OnnxBackend
    from lale.runs import load_config
    model, config = OnnxBackend(Path(run) / "model.onnx", threads=int(threads)), load_config(
        Path(run) / "config.json")
else:
    model, config = load_backend(run, backend, "cpu")
options = PredictOptions(tile=int(tile), overlap=int(overlap), batch_size=int(batch))
r = predict_scene(scene, out, model, config, options)
print(json.dumps({"windows": r.windows, "windows_run": r.windows_run, "seconds": r.seconds,
                  "load_seconds": time.perf_counter() - t0 - r.seconds,
                  "threads": torch.get_num_threads(), "plan": r.plan,
                  "valid_pixels": r.areas.valid_pixels, "nodata_pixels": r.areas.nodata_pixels,
                  "vm_hwm_kb": next((int(line.split()[1]) for line in open("/proc/self/status")
                                     if line.startswith("VmHWM")), None)}))
"""


def write_scene(path: Path, size: int, seed: int = 0, strip: int = 512) -> None:
    """A ``size²`` three-band uint16 GeoTIFF written strip by strip (bounded memory)."""
    rng = np.random.default_rng(seed)
    cell = 96  # texture scale of the smooth field, pixels
    n = size // cell + 2
    coarse = rng.random((3, n, n)).astype(np.float32)
    base = np.array([900, 800, 600], np.float32).reshape(3, 1, 1)
    amp = np.array([1400, 1100, 900], np.float32).reshape(3, 1, 1)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 3,
        "dtype": "uint16",
        "crs": "EPSG:32635",
        "transform": Affine(10, 0, 300_000, 0, -10, 4_600_000),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 2,
        "bigtiff": "if_safer",
    }
    x = np.arange(size, dtype=np.float32) / cell
    x0 = x.astype(int)
    fx = x - x0
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, strip):
            h = min(strip, size - r0)
            y = np.arange(r0, r0 + h, dtype=np.float32) / cell
            y0 = y.astype(int)
            fy = (y - y0)[:, None]
            c = coarse[:, y0][:, :, x0], coarse[:, y0][:, :, x0 + 1]
            d = coarse[:, y0 + 1][:, :, x0], coarse[:, y0 + 1][:, :, x0 + 1]
            top = c[0] * (1 - fx) + c[1] * fx
            bottom = d[0] * (1 - fx) + d[1] * fx
            field = top * (1 - fy) + bottom * fy
            noise = rng.normal(0, 80, (3, h, size)).astype(np.float32)
            data = np.clip(base + amp * field + noise, 1, 10000).astype(np.uint16)
            rows = np.arange(r0, r0 + h)[:, None]
            data[:, rows + np.arange(size)[None] < size // 4] = 0  # no-data wedge (~3 %)
            dst.write(data, window=Window(0, r0, size, h))


def run_child(args: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run the predictor in a child; returns its JSON line, wall seconds and peak RSS (MB)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"predict failed ({proc.returncode}): {stderr[-2000:]}")
    stats = json.loads(stdout.strip().splitlines()[-1])
    # VmHWM: the peak RSS of the process after exec. ru_maxrss would also count the parent's
    # pages the child held between fork and exec (this parent has just generated the scene).
    hwm = stats.pop("vm_hwm_kb")
    peak_mb = (hwm if hwm is not None else usage.ru_maxrss) / 1024  # both in KiB on Linux
    return stats, wall, peak_mb


def export_onnx(run: Path) -> str | None:
    """Export the run to ``RUN/model.onnx`` (:mod:`lale.inference.onnx.export`); a reason if not."""
    try:
        from lale.inference.onnx.backend import OnnxBackend  # noqa: F401
        from lale.inference.onnx.export import export_onnx as export
    except ImportError as err:
        return f"onnx backend not available ({err})"
    try:
        export(run)
    except Exception as err:  # report and go on with the other backends
        return f"export failed ({type(err).__name__}: {err})"
    return None


def library_versions() -> dict[str, str | None]:
    """Versions of the raster and ONNX libraries the predictor used."""
    from lale.profiling.environment import distribution_versions

    return {
        "gdal": rasterio.__gdal_version__,
        **distribution_versions("rasterio", "pyproj", "onnx", "onnxruntime"),
    }


def markdown(result: dict[str, Any]) -> str:
    env, s = result["environment"], result["settings"]
    lines = [
        "# Whole-scene inference on CPU",
        "",
        "Generated by `python benchmarks/scene_inference.py`. One child process per backend runs "
        "`predict_scene` (read by windows, model, stitching, GeoTIFF/PNG/area-table writing); "
        "windows/s counts windows run through the model over that wall time.",
        "",
        f"- **device**: {env['device']} ({env['device_type']}), {env['cpu_count']} logical CPUs; "
        f"{env['platform']}",
        f"- **scene**: {s['size']}×{s['size']} × 3 bands uint16, EPSG:32635 10 m, 256² DEFLATE "
        f"tiles, {s['nodata_share']:.1%} no-data wedge",
        f"- **model**: untrained `lale_t` (fp32), tile {s['tile']}, overlap {s['overlap']}, "
        f"batch {s['batch_size']}, blend smooth; {s['windows']} windows",
        f"- **threads**: {s['threads']}; load average (1, 5, 15 min) before the run "
        f"{s['loadavg']}, after {s.get('loadavg_after', 'not recorded')} "
        "(a shared machine: other jobs ran meanwhile)",
        "- **versions**: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        f"- **date**: {env['date']}",
        "",
        "Threads: `--threads 1` keeps the numbers meaningful on a shared 2-core machine (with two "
        "OpenMP threads and another job holding a core, torch slows down by an order of "
        "magnitude); `--threads 0` uses each library's default.",
        "",
        "| backend | windows run | seconds | windows/s | MPix/s | peak RSS (MB) | < 3 GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, r in result["backends"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['windows_run']} | {r['seconds']:.1f} | {r['windows_per_s']:.2f} | "
            f"{r['mpix_per_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{'yes' if r['under_3gb'] else 'NO'} |"
        )
    for name, r in result["backends"].items():
        if "full_tile_seconds_extrapolated" in r:
            lines.append("")
            lines.append(
                f"*Extrapolated* ({name}): a full {FULL_TILE}² tile "
                f"({r['full_tile_windows']} windows) would take about "
                f"{r['full_tile_seconds_extrapolated']:.0f} s at the measured windows/s."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=FULL_TILE, help="scene side in pixels")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch / onnxruntime threads (0: their default)"
    )
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        scene = work / "s2_tile.tif"
        t0 = time.perf_counter()
        write_scene(scene, args.size)
        print(
            f"wrote {scene} ({scene.stat().st_size / 2**20:.0f} MB) in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        run = work / "run"
        torch.manual_seed(0)
        save_run(run, create_model("lale_t", 7, 3), RunConfig.from_schema("lale_t", ARAS400K))
        grid = TileGrid(args.size, args.size, args.tile, args.overlap)
        full = len(TileGrid(FULL_TILE, FULL_TILE, args.tile, args.overlap))
        loadavg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        results: dict[str, Any] = {}
        for backend in args.backends:
            if backend == "onnx" and (reason := export_onnx(run)) is not None:
                results[backend] = {"skipped": reason}
                print(f"{backend}: skipped ({reason})", flush=True)
                continue
            child_args = [
                str(run),
                str(scene),
                str(work / f"out_{backend}"),
                backend,
                str(args.tile),
                str(args.overlap),
                str(args.batch_size),
                str(args.threads),
            ]
            stats, wall, peak = run_child(child_args)
            rate = stats["windows_run"] / stats["seconds"]
            entry = {
                **stats,
                "child_wall_seconds": wall,
                "windows_per_s": rate,
                "mpix_per_s": args.size**2 / stats["seconds"] / 1e6,
                "peak_rss_mb": peak,
                "under_3gb": peak < RSS_LIMIT_MB,
            }
            if args.size != FULL_TILE:
                entry["full_tile_windows"] = full
                entry["full_tile_seconds_extrapolated"] = full / rate
            results[backend] = entry
            print(
                f"{backend}: {stats['windows_run']} windows in {stats['seconds']:.1f} s "
                f"({rate:.2f}/s), peak RSS {peak:.0f} MB",
                flush=True,
            )
        env = collect_environment("cpu")
        env.versions.update(library_versions())
        threads = next((r["threads"] for r in results.values() if "threads" in r), None)
        nodata = next((r for r in results.values() if "nodata_pixels" in r), None)
        result = {
            "environment": env.__dict__,
            "settings": {
                "size": args.size,
                "tile": args.tile,
                "overlap": args.overlap,
                "batch_size": args.batch_size,
                "threads": threads,
                "windows": len(grid),
                "loadavg": loadavg,
                "loadavg_after": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
                "nodata_share": 0.0 if nodata is None else nodata["nodata_pixels"] / args.size**2,
                "extrapolated": args.size != FULL_TILE,
            },
            "backends": results,
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scene_inference_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "scene_inference_cpu.md").write_text(markdown(result))
    print(f"wrote {RESULTS / 'scene_inference_cpu.md'}")
    if any(not r.get("under_3gb", True) for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
