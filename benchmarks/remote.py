"""Imagery where it lives: a window of a remote COG, and shard sets streamed from S3.

Usage (from the repository root)::

    .venv/bin/python benchmarks/remote.py                  # 10980² scene, 2048² window
    .venv/bin/python benchmarks/remote.py --size 4096 --window 1024 --patches 96

1. **A window of a remote scene.** Writes a ``--size``² 3-band uint8 COG (512² deflate tiles,
   the layout of Sentinel-2 L2A COGs), serves it from a local HTTP server that honours Range
   requests and waits ``--latency`` seconds before each answer, and times ``lale predict URL
   --bbox …`` for a ``--window``² box (an untrained lale_s1 run; fp32, CPU) against the same
   command on the local file, in one run. Bytes and requests are counted by the server.
2. **Shard streaming.** Packs ``--patches`` synthetic 256² patches with ``lale pack``, uploads
   them to a local S3-compatible server (moto), and reads one epoch through lale's training
   loader (seeded random order, decode, batch 24, no workers) from the local shard set, from
   ``s3://`` with chunks cached (first epoch downloads, second reads the cache), and from
   ``s3://`` by byte ranges (a cache limit below the set's size). moto adds no latency; the
   numbers are the cost of the code path, not of a distant bucket.

Writes ``benchmarks/results/remote_cpu.json`` and ``remote_cpu.md``; the data are deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from typer.testing import CliRunner

from lale import cli
from lale.data.schema import ARAS400K
from lale.profiling import collect_environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from http_server import serve  # the tests' Range-honouring server

RESULTS = Path(__file__).resolve().parent / "results"
runner = CliRunner()


def write_scene(path: Path, size: int) -> None:
    """A ``size``² RGB COG in UTM 35N at 10 m: smooth fields plus noise, so it compresses."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(20, 230, (3, size // 64 + 2, size // 64 + 2), dtype=np.uint8)
    profile = {
        "driver": "MEM",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32635",
        "transform": from_origin(500000, 4600000, 10, 10),
    }
    fields = np.repeat(np.repeat(coarse, 64, axis=1), 64, axis=2)
    with rasterio.open("", "w", **profile) as mem:
        for row in range(0, size, 1024):
            h = min(1024, size - row)
            block = fields[:, row : row + h, :size]
            noise = rng.integers(0, 12, block.shape, dtype=np.uint8)
            mem.write(block + noise, window=((row, row + h), (0, size)))
        rasterio.shutil.copy(mem, path, driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE")


def make_run(path: Path) -> None:
    from lale.models import create_model
    from lale.runs import RunConfig, save_run

    torch.manual_seed(0)
    save_run(path, create_model("lale_s1", 7, 3), RunConfig.from_schema("lale_s1", ARAS400K))


def _box(path: Path, window: int) -> str:
    with rasterio.open(path) as src:
        r0 = (src.height - window) // 2
        bounds = src.window_bounds(((r0, r0 + window), (r0, r0 + window)))
        return ",".join(f"{v:.9f}" for v in transform_bounds(src.crs, "EPSG:4326", *bounds))


def _predict(source: str, run: Path, out: Path, box: str) -> float:
    args = ["predict", source, f"--run={run}", f"--out={out}", "--bbox", box, "--no-progress"]
    start = time.perf_counter()
    result = runner.invoke(cli.app, args)
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"lale predict {source} failed: {result.output}")
    return seconds


def scene_part(tmp: Path, size: int, window: int, latency: float) -> dict[str, Any]:
    served = tmp / "served"
    served.mkdir(parents=True)
    start = time.perf_counter()
    write_scene(served / "scene.tif", size)
    written = time.perf_counter() - start
    run = tmp / "run"
    make_run(run)
    box = _box(served / "scene.tif", window)
    local = _predict(str(served / "scene.tif"), run, tmp / "local", box)
    with serve(served, latency=latency) as server:
        remote = _predict(f"{server.url}/scene.tif", run, tmp / "remote", box)
        fetched, requests = server.bytes_sent, server.requests
    with (
        rasterio.open(tmp / "local" / "scene_classes.tif") as a,
        rasterio.open(tmp / "remote" / "scene_classes.tif") as b,
    ):
        same = bool(np.array_equal(a.read(), b.read())) and a.transform == b.transform
        shape = [a.height, a.width]
    return {
        "scene": [size, size],
        "file_bytes": (served / "scene.tif").stat().st_size,
        "scene_write_s": written,
        "window": shape,
        "latency_s": latency,
        "local_s": local,
        "remote_s": remote,
        "remote_over_local": remote / local,
        "bytes_fetched": fetched,
        "requests": requests,
        "fetched_share": fetched / (served / "scene.tif").stat().st_size,
        "same_class_map": same,
    }


def _epochs(root: Path, epochs: int) -> list[float]:
    """Images/s over each of ``epochs`` epochs of one training loader on ``root``."""
    from lale.training.datamodule import LandCoverDataModule

    data = LandCoverDataModule(root, ARAS400K, batch_size=24, seed=0)
    data.workers = 0
    rates = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for batch in data.train_dataloader():
            n += batch[0].shape[0]
        rates.append(n / (time.perf_counter() - start))
    return rates


def shards_part(tmp: Path, patches: int, shard_size: str) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from lale.data.shards.pack import pack_dataset, parse_shard_size
    from lale.data.shards.remote import open_remote_shards
    from lale.data.synthetic import write_dataset

    write_dataset(tmp / "data", train=patches, val=0, test=0, size=256, workers=2)
    for empty in ("val", "test"):
        shutil.rmtree(tmp / "data" / empty, ignore_errors=True)
    pack_dataset(tmp / "data", tmp / "shards", shard_size=parse_shard_size(shard_size))
    total = sum(p.stat().st_size for p in (tmp / "shards").rglob("chunk-*.bin"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    try:
        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        client.create_bucket(Bucket="bench")
        for path in sorted((tmp / "shards").rglob("*")):
            if path.is_file():
                key = f"shards/{path.relative_to(tmp / 'shards')}"
                client.upload_file(str(path), "bench", key)
        local = _epochs(tmp / "shards", 2)
        rates = {"local disk": local[0], "local disk: second epoch": local[1]}
        cached = open_remote_shards("s3://bench/shards", tmp / "cache1", total * 2)
        first, second = _epochs(cached, 2)
        rates["s3, chunks cached: first epoch"] = first
        rates["s3, chunks cached: second epoch"] = second
        rates["s3, chunks cached: a later run"] = _epochs(cached, 1)[0]
        ranged = open_remote_shards("s3://bench/shards", tmp / "cache2", total // 2)
        rates["s3, byte ranges"] = _epochs(ranged, 1)[0]
    finally:
        server.stop()
    return {
        "patches": patches,
        "shard_size": shard_size,
        "chunk_bytes": total,
        "chunks": len(list((tmp / "shards").rglob("chunk-*.bin"))),
        "images_per_s": rates,
        "over_local": {k: v / rates["local disk"] for k, v in rates.items()},
    }


def write_md(result: dict[str, Any], path: Path) -> None:
    env, scene, shards = result["environment"], result["scene"], result["shards"]
    mb = 1e6
    lines = [
        "# Remote imagery: a window of a remote COG, shard sets streamed from S3",
        "",
        f"Generated by `python benchmarks/remote.py {' '.join(result['argv'])}`.".replace(
            " `.", "`."
        ),
        "",
        f"- **device**: {env['device']} ({env['device_type']}), {env['cpu_count']} logical CPUs; "
        f"{env['platform']}",
        "- **versions**: "
        + ", ".join(
            f"{k} {v}"
            for k, v in {**env["versions"], **result["libraries"]}.items()
            if v is not None
        ),
        f"- **date**: {env['date']}; fp32, one run per row (a shared machine: read ratios)",
        "",
        f"## {scene['window'][0]}×{scene['window'][1]} window of a "
        f"{scene['scene'][0]}² COG (lale predict --bbox, lale_s1 untrained)",
        "",
        f"The COG: 3-band uint8, 512² deflate tiles, {scene['file_bytes'] / mb:,.0f} MB. "
        f"The server waits {scene['latency_s'] * 1000:.0f} ms before each answer.",
        "",
        "| input | seconds | bytes fetched | requests |",
        "| --- | ---: | ---: | ---: |",
        f"| local file | {scene['local_s']:.2f} | – | – |",
        f"| https, {scene['latency_s'] * 1000:.0f} ms latency | {scene['remote_s']:.2f} | "
        f"{scene['bytes_fetched'] / mb:,.1f} MB ({scene['fetched_share']:.1%} of the file) | "
        f"{scene['requests']} |",
        "",
        f"Remote / local time: **{scene['remote_over_local']:.2f}×**. Class maps identical: "
        f"{scene['same_class_map']}.",
        "",
        f"## Shard streaming ({shards['patches']} patches of 256², {shards['chunks']} chunks, "
        f"{shards['chunk_bytes'] / mb:.1f} MB)",
        "",
        "lale's training loader over an epoch (seeded random order, decode, batch 24, no "
        "workers); two epochs in a row are one loader's. The S3 server is local (moto), without "
        "added latency: the rows measure lale's and LitData's code path, not a distant bucket.",
        "",
        "| source | images/s | × local disk |",
        "| --- | ---: | ---: |",
    ]
    for name, rate in shards["images_per_s"].items():
        lines.append(f"| {name} | {rate:.1f} | {shards['over_local'][name]:.2f}× |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _libraries() -> dict[str, str]:
    from importlib.metadata import version

    names = ("litdata", "obstore", "boto3", "moto", "rasterio")
    return {**{n: version(n) for n in names}, "GDAL": rasterio.__gdal_version__}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--patches", type=int, default=240)
    parser.add_argument("--shard-size", default="4MB")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="lale-remote-"))
    try:
        scene = scene_part(tmp / "scene", args.size, args.window, args.latency)
        print(json.dumps(scene, indent=2))
        shards = shards_part(tmp / "shards", args.patches, args.shard_size)
        print(json.dumps(shards, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "argv": sys.argv[1:] if argv is None else argv,
        "environment": asdict(collect_environment("cpu")),
        "libraries": _libraries(),
        "scene": scene,
        "shards": shards,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    write_md(result, args.out / "remote_cpu.md")
    print((args.out / "remote_cpu.md").read_text())


if __name__ == "__main__":
    main()
