"""GeoDeep against ``lale predict --model`` on the same ONNX file and the same 8-bit scene.

Usage (from the repository root)::

    .venv/bin/lale train --data ../shared/data/amazon-forest --out runs/amazon_t --model lale_t \\
        --epochs 30 --batch-size 8 --crop-size 256 --skip-bad-pairs
    .venv/bin/python benchmarks/clients.py --run runs/amazon_t

The clients file (``lale export --clients``, 256² tiles) is written into the run if it is not
there. Without ``--scene``, the scene is a 1920×1920 8-bit RGB GeoTIFF (UTM 21S, 10 m, tiled)
mosaicked from the real Sentinel-2 patches of ``../shared/data/amazon-forest/test/images``,
each reprojected from EPSG:4326 first: GeoDeep 0.9.13 reads a geographic CRS's pixel size in
degrees as metres and then upsamples by about 1000× (geodeep.py, ``input_res``), so it needs a
projected scene.

Both run in this process, one after the other and ``--repeats`` times interleaved, with
onnxruntime's default threads, each time loading the model: ``geodeep.segment(scene, file,
output_type="raw")`` and lale's ``load_model_file`` + ``predict_scene`` (class map COG, preview
and area table written, as ``lale predict`` does). Reported: the median seconds of each and
their ratio, and the share of pixels where GeoDeep's mask equals lale's class map (over the
pixels lale maps, 8 px from the scene's edge excluded) with the reasons for the rest.

Writes ``benchmarks/results/clients_<device>.json`` and ``clients_<device>.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-forest"
UTM_21S = "EPSG:32721"


def mosaic_scene(path: Path, side: int = 1920) -> dict[str, Any]:
    """A ``side``² 8-bit RGB GeoTIFF of real patches reprojected to UTM 21S, 10 m pixels."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    sources = sorted((SHARED / "test" / "images").glob("*.tif"))
    if not sources:
        raise SystemExit(f"{SHARED / 'test' / 'images'}: no patches; give --scene")
    patch = 480  # every reprojected patch holds a 480² centre free of warp borders
    tiles = []
    for src_path in sources:
        with rasterio.open(src_path) as src:
            transform, w, h = calculate_default_transform(
                src.crs, UTM_21S, src.width, src.height, *src.bounds, resolution=10
            )
            data = np.zeros((3, h, w), np.uint8)
            reproject(
                src.read(), data, src_transform=src.transform, src_crs=src.crs,
                dst_transform=transform, dst_crs=UTM_21S, resampling=Resampling.bilinear,
            )  # fmt: skip
            r0, c0 = (h - patch) // 2, (w - patch) // 2  # the centre, free of warp borders
            tiles.append(data[:, r0 : r0 + patch, c0 : c0 + patch])
    n = side // patch
    image = np.zeros((3, side, side), np.uint8)
    for i in range(n * n):
        r, c = divmod(i, n)
        image[:, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = tiles[i % len(tiles)]
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8",
        "crs": UTM_21S, "transform": from_origin(500_000, 9_800_000, 10, 10), "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "photometric": "RGB",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
    return {"side": side, "patches": [p.name for p in sources], "crs": UTM_21S, "pixel_m": 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="Run trained on 8-bit RGB.")
    parser.add_argument("--scene", type=Path, help="8-bit RGB GeoTIFF in a projected CRS.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import geodeep
    import rasterio

    from lale.inference.onnx.clients import client_path, export_clients
    from lale.inference.options import PredictOptions
    from lale.inference.predict import load_model_file, predict_scene
    from lale.profiling.environment import collect_environment, distribution_versions

    model = client_path(args.run / "model.onnx")
    if not model.is_file():
        export_clients(args.run, model)
    with tempfile.TemporaryDirectory() as tmp:
        scene = args.scene
        scene_info: dict[str, Any] = {"file": str(scene)} if scene else {}
        if scene is None:
            scene = Path(tmp) / "amazon_mosaic.tif"
            scene_info = mosaic_scene(scene)
        seconds: dict[str, list[float]] = {"geodeep": [], "lale": []}
        mask = ours = None
        for _ in range(args.repeats):
            t = time.perf_counter()
            mask = geodeep.segment(str(scene), str(model), output_type="raw")
            seconds["geodeep"].append(time.perf_counter() - t)
            t = time.perf_counter()
            backend, config = load_model_file(model)
            result = predict_scene(scene, Path(tmp) / "out", backend, config, PredictOptions())
            seconds["lale"].append(time.perf_counter() - t)
            with rasterio.open(result.outputs["classes"]) as src:
                ours = src.read(1)
        assert mask is not None and ours is not None
    inner = np.zeros(ours.shape, bool)
    inner[8:-8, 8:-8] = True
    mapped = inner & (ours != 255)
    agree = float(np.mean(mask[mapped] == ours[mapped]))
    metrics = args.run / "test_metrics.json"
    test_f1 = (
        f"{json.loads(metrics.read_text())['macro']['f1']:.2%}" if metrics.is_file() else "n/a"
    )
    median = {k: statistics.median(v) for k, v in seconds.items()}
    env = collect_environment("cpu")
    record = {
        "run": str(args.run),
        "model_file": model.name,
        "model": config.model,
        "test_macro_f1": test_f1,
        "scene": scene_info,
        "repeats": args.repeats,
        "seconds": seconds,
        "median_s": median,
        "geodeep_over_lale": median["geodeep"] / median["lale"],
        "agreement": agree,
        "pixels_compared": int(mapped.sum()),
        "versions": distribution_versions("geodeep", "onnxruntime", "rasterio", "lale"),
        "environment": dataclasses.asdict(env),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu"
    (args.out / f"clients_{device}.json").write_text(json.dumps(record, indent=2) + "\n")
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    lines = [
        "# GeoDeep and lale predict --model on the same ONNX file and scene",
        "",
        f"Command: `.venv/bin/python benchmarks/clients.py --run {args.run}` ({versions}; "
        f"{env.cpu}, {env.cpu_count} CPUs, onnxruntime default threads).",
        "",
        f"Scene: {json.dumps(scene_info)}. Model file: {model.name} (256² tiles) of a "
        f"{config.model} run with test macro-F1 {test_f1}.",
        "",
        "| | median s | runs (s) |",
        "|---|---:|---|",
        *(
            f"| {k} | {median[k]:.2f} | {', '.join(f'{s:.2f}' for s in v)} |"
            for k, v in seconds.items()
        ),
        "",
        f"GeoDeep / lale time: {record['geodeep_over_lale']:.2f}×. Agreement of the class maps: "
        f"{agree:.2%} of {int(mapped.sum()):,} pixels (8 px border excluded).",
        "",
        "The rest differ because GeoDeep pastes the centre of each tile where lale blends the "
        "overlapping logits, smooths its mask with a 5×5 median filter, and reads past the "
        "scene's edge as zeros where lale reflects.",
        "",
    ]
    (args.out / f"clients_{device}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
